-- Core analytics tables. ReplacingMergeTree keyed by event id: a re-delivered event collapses into one row,
-- and readers that need exact counts before background merges query with FINAL.
CREATE TABLE IF NOT EXISTS llm_calls (
    event_id String,
    rollout_id String,
    call_id String,
    seq Int64,
    model LowCardinality(String),
    model_version Int64,
    agent_name LowCardinality(String),
    endpoint LowCardinality(String),
    prompt_tokens UInt32,
    completion_tokens UInt32,
    latency_ms Float64,
    http_status UInt16,
    error_class LowCardinality(String),
    finish_reason LowCardinality(String),
    started_at DateTime64(3),
    gateway_id LowCardinality(String)
) ENGINE = ReplacingMergeTree ORDER BY event_id;

CREATE TABLE IF NOT EXISTS rollouts (
    rollout_id String,
    event_id String,
    task_id String,
    group_id String,
    task_type LowCardinality(String),
    split LowCardinality(String),
    status LowCardinality(String),
    reward Float64,
    num_calls UInt32,
    num_errors UInt32,
    merge_mismatches UInt32,
    min_model_version Int64,
    max_model_version Int64,
    finished_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY rollout_id;

CREATE TABLE IF NOT EXISTS rewards (
    event_id String,
    rollout_id String,
    call_id String,
    name LowCardinality(String),
    value Float64,
    source LowCardinality(String),
    late UInt8,
    created_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY event_id;

CREATE TABLE IF NOT EXISTS errors (
    event_id String,
    rollout_id String,
    step Int64,
    error_class LowCardinality(String),
    message String,
    stack String,
    attributor LowCardinality(String),
    task_type LowCardinality(String),
    model_version Int64,
    created_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY event_id;

CREATE TABLE IF NOT EXISTS train_steps (
    event_id String,
    model LowCardinality(String),
    step Int64,
    version Int64,
    loss Float64,
    kl Float64,
    reward_mean Float64,
    reward_std Float64,
    clip_fraction Float64,
    tokens_per_s Float64,
    num_trajectories UInt32,
    num_groups UInt32,
    dropped_stale UInt32,
    batch_id String,
    created_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY event_id;

CREATE TABLE IF NOT EXISTS weight_versions (
    event_id String,
    model LowCardinality(String),
    version Int64,
    uri String,
    base_model String,
    step Int64,
    format LowCardinality(String),
    created_at DateTime64(3)
) ENGINE = ReplacingMergeTree ORDER BY event_id;
