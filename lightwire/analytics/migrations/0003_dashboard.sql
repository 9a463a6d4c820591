-- What the dashboard shows of a rollout that the tables above lacked: each completion's sampled tokens and their
-- logprobs, the agent's spans, the rollout's start (task input, worker), the transitions the trainer got from it and
-- the batch each GRPO group went into. Keys as before: a re-delivered event collapses into one row.
-- Tokens are packed (one base64 string of little-endian int32 ids, or float32 logprobs, per completion): nested
-- arrays cost the collector about 7 us of CPU per call to serialise, a packed string a fraction of one; the read
-- API unpacks the few calls a page shows.
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS completion_token_ids_packed Array(String);
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS completion_logprobs_packed Array(String);

CREATE TABLE IF NOT EXISTS spans (
    event_id String,
    rollout_id String,
    span_id String,
    parent_span_id String,
    name String,
    kind LowCardinality(String),
    agent_name LowCardinality(String),
    after_seq Int64,
    started_at DateTime64(3),
    ended_at DateTime64(3),
    attributes_json String,
    error_type String,
    error_message String
) ENGINE = ReplacingMergeTree ORDER BY event_id;

CREATE TABLE IF NOT EXISTS rollout_starts (
    rollout_id String,
    event_id String,
    task_id String,
    group_id String,
    task_type LowCardinality(String),
    split LowCardinality(String),
    input_json String,
    worker_id String,
    gateway_id LowCardinality(String),
    started_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY rollout_id;

-- One row per trajectory: its transitions side by side (index i of every array is transition i).
CREATE TABLE IF NOT EXISTS transitions (
    rollout_id String,
    event_id String,
    call_ids Array(String),
    seqs Array(Int64),
    merged_calls Array(UInt32),
    prompt_tokens Array(UInt32),
    response_masks Array(Array(UInt8)),
    rewards Array(Float64),
    model_versions Array(Int64),
    created_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY rollout_id;

-- One row per group of a training batch.
CREATE TABLE IF NOT EXISTS batch_groups (
    event_id String,
    batch_id String,
    group_id String,
    task_id String,
    trajectories UInt32,
    min_model_version Int64,
    created_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY event_id
