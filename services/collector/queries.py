"""The read side of the analytics: named queries for the dashboard, the CLI and tests (ClickHouse SQL).

Every query is bounded (LIMIT, or an aggregate over a bounded key), and every value from a request reaches the SQL
only as a bound parameter ({name:Type}); the only text spliced in is chosen from the fixed tables below
(rollout_filters.py picks sort columns and filter clauses by name). Times are read as epoch milliseconds
(`*_ms`), so JSON carries plain numbers.
"""

from __future__ import annotations

SUMMARY = {
    "reward_by_version": """
        SELECT max_model_version AS model_version, split, count() AS rollouts, avg(reward) AS reward_mean,
               stddevSampStable(reward) AS reward_std
        FROM rollouts FINAL GROUP BY model_version, split ORDER BY model_version, split LIMIT 1000""",
    "reward_by_task": """
        SELECT task_type, task_id, count() AS rollouts, avg(reward) AS reward_mean
        FROM rollouts FINAL GROUP BY task_type, task_id ORDER BY rollouts DESC, task_id LIMIT 100""",
    "errors_by_class": """
        SELECT error_class, step, count() AS errors FROM errors FINAL GROUP BY error_class, step
        ORDER BY errors DESC, error_class, step LIMIT 1000""",
    "latency": """
        SELECT model, count() AS calls, quantile(0.5)(latency_ms) AS p50_ms, quantile(0.9)(latency_ms) AS p90_ms,
               quantile(0.99)(latency_ms) AS p99_ms
        FROM llm_calls FINAL GROUP BY model ORDER BY model LIMIT 100""",
    "usage": """
        SELECT model, model_version, count() AS calls, sum(prompt_tokens) AS prompt_tokens,
               sum(completion_tokens) AS completion_tokens
        FROM llm_calls FINAL GROUP BY model, model_version ORDER BY model, model_version LIMIT 1000""",
    "status": """
        SELECT status, count() AS rollouts FROM rollouts FINAL GROUP BY status ORDER BY status LIMIT 100""",
    "train_steps": """
        SELECT step, version, loss, kl, reward_mean, reward_std, clip_fraction, tokens_per_s
        FROM train_steps FINAL ORDER BY step DESC LIMIT 50""",
    "late_rewards": """
        SELECT name, count() AS rewards, avg(value) AS value_mean FROM rewards FINAL WHERE late = 1 GROUP BY name
        ORDER BY name LIMIT 100""",
}

COUNTS = {
    "rollouts": "SELECT count() AS n, uniqExact(rollout_id) AS distinct_ids FROM rollouts FINAL",
    "llm_calls": "SELECT count() AS n, uniqExact(event_id) AS distinct_ids FROM llm_calls FINAL",
    "rewards": "SELECT count() AS n, uniqExact(event_id) AS distinct_ids FROM rewards FINAL",
    "errors": "SELECT count() AS n, uniqExact(event_id) AS distinct_ids FROM errors FINAL",
}

# Rates over the last ten minutes in 10 s buckets, against the store's clock: a live view, empty when nothing runs.
OVERVIEW = {
    "reward_by_version": SUMMARY["reward_by_version"],
    "calls_per_bucket": """
        SELECT toUnixTimestamp(toStartOfInterval(started_at, INTERVAL 10 SECOND)) * 1000 AS t_ms, count() AS calls,
               countIf(error_class != '') AS failed
        FROM llm_calls FINAL WHERE started_at >= now64(3) - INTERVAL 10 MINUTE GROUP BY t_ms ORDER BY t_ms LIMIT 61""",
    "rollouts_per_bucket": """
        SELECT toUnixTimestamp(toStartOfInterval(finished_at, INTERVAL 10 SECOND)) * 1000 AS t_ms, count() AS rollouts
        FROM rollouts FINAL WHERE finished_at >= now64(3) - INTERVAL 10 MINUTE GROUP BY t_ms ORDER BY t_ms LIMIT 61""",
    "totals": """
        SELECT (SELECT count() FROM llm_calls FINAL) AS calls, (SELECT count() FROM rollouts FINAL) AS rollouts,
               (SELECT countIf(num_errors > 0) FROM rollouts FINAL) AS rollouts_with_errors,
               toUnixTimestamp64Milli(now64(3)) AS now_ms""",
    # Share of rollouts with at least one error of the class: attribution puts call failures in classes too.
    "errors_by_class": """
        SELECT error_class, count() AS errors, uniqExact(rollout_id) AS rollouts FROM errors FINAL
        GROUP BY error_class ORDER BY errors DESC, error_class LIMIT 50""",
    # The version each gateway saw inference serve on its latest call (the dashboard also asks inference itself).
    "served_by_gateway": """
        SELECT gateway_id, model, argMax(model_version, started_at) AS model_version,
               toUnixTimestamp64Milli(max(started_at)) AS last_call_ms
        FROM llm_calls FINAL WHERE http_status = 200 GROUP BY gateway_id, model ORDER BY last_call_ms DESC LIMIT 20""",
    "latest_step": """
        SELECT step, version, loss, reward_mean, toUnixTimestamp64Milli(created_at) AS at_ms
        FROM train_steps FINAL ORDER BY step DESC LIMIT 1""",
    "latest_version": """
        SELECT model, version, step, toUnixTimestamp64Milli(created_at) AS at_ms FROM weight_versions FINAL
        ORDER BY version DESC LIMIT 1""",
}

# A step the trainer skipped (every group scored alike: no signal) spends no time on an update, so it reports
# tokens_per_s 0 (services/trainer/main.py); an update always takes some. Staleness is the lag the trainer saw: the
# version it held (the step's version, less one when the step published a new one) minus the batch's oldest version.
TRAINING = {
    "steps": """
        SELECT t.step AS step, t.version AS version, t.loss AS loss, t.kl AS kl, t.clip_fraction AS clip_fraction,
               t.reward_mean AS reward_mean, t.reward_std AS reward_std, t.tokens_per_s AS tokens_per_s,
               t.num_trajectories AS trajectories, t.num_groups AS groups, t.dropped_stale AS dropped_stale,
               t.batch_id AS batch_id, t.tokens_per_s = 0 AS skipped, w.step IS NOT NULL AS published,
               if(b.min_version IS NULL OR b.min_version = 0, NULL,
                  t.version - if(w.step IS NULL, 0, 1) - b.min_version) AS staleness,
               toUnixTimestamp64Milli(t.created_at) AS at_ms
        FROM (SELECT * EXCEPT (event_id) FROM train_steps FINAL ORDER BY step DESC LIMIT {limit:UInt32}) AS t
        LEFT JOIN (SELECT batch_id, min(min_model_version) AS min_version FROM batch_groups FINAL GROUP BY batch_id) AS b
            ON b.batch_id = t.batch_id
        LEFT JOIN (SELECT model, step FROM weight_versions FINAL GROUP BY model, step) AS w
            ON w.model = t.model AND w.step = t.step
        ORDER BY step SETTINGS join_use_nulls = 1""",
    "batches": """
        SELECT batch_id, count() AS groups, sum(trajectories) AS trajectories, min(min_model_version) AS min_model_version,
               toUnixTimestamp64Milli(min(created_at)) AS at_ms
        FROM batch_groups FINAL GROUP BY batch_id ORDER BY at_ms DESC LIMIT 200""",
}

ROLLOUT = {
    "rollout": """
        SELECT rollout_id, task_id, group_id, task_type, split, status, reward, num_calls, num_errors, merge_mismatches,
               min_model_version, max_model_version, toUnixTimestamp64Milli(finished_at) AS finished_ms
        FROM rollouts FINAL WHERE rollout_id = {rollout_id:String} LIMIT 1""",
    "start": """
        SELECT task_id, group_id, task_type, split, input_json, worker_id, gateway_id,
               toUnixTimestamp64Milli(started_at) AS started_ms
        FROM rollout_starts FINAL WHERE rollout_id = {rollout_id:String} LIMIT 1""",
    # In rollout order, as the collector numbers steps: by start time, then seq (rollout_state.in_rollout_order).
    "calls": """
        SELECT event_id, call_id, seq, model, model_version, agent_name, endpoint, prompt_tokens, completion_tokens,
               latency_ms, http_status, error_class, finish_reason, toUnixTimestamp64Milli(started_at) AS started_ms,
               request_json, response_json, completion_token_ids_packed, completion_logprobs_packed, prompt_version
        FROM llm_calls FINAL WHERE rollout_id = {rollout_id:String} ORDER BY started_at, seq, call_id LIMIT 500""",
    "spans": """
        SELECT span_id, parent_span_id, name, kind, agent_name, after_seq, toUnixTimestamp64Milli(started_at) AS started_ms,
               toUnixTimestamp64Milli(ended_at) AS ended_ms, attributes_json, error_type, error_message
        FROM spans FINAL WHERE rollout_id = {rollout_id:String} ORDER BY after_seq, started_at, span_id LIMIT 1000""",
    "rewards": """
        SELECT event_id, call_id, name, value, source, late, toUnixTimestamp64Milli(created_at) AS created_ms
        FROM rewards FINAL WHERE rollout_id = {rollout_id:String} ORDER BY created_at, event_id LIMIT 1000""",
    "errors": """
        SELECT event_id, step, error_class, message, stack, attributor, model_version,
               toUnixTimestamp64Milli(created_at) AS created_ms
        FROM errors FINAL WHERE rollout_id = {rollout_id:String} ORDER BY step, event_id LIMIT 1000""",
    "transitions": """
        SELECT call_ids, seqs, merged_calls, prompt_tokens, response_masks, rewards, model_versions
        FROM transitions FINAL WHERE rollout_id = {rollout_id:String} LIMIT 1""",
    "batch": """
        SELECT b.batch_id AS batch_id, b.group_id AS group_id, b.trajectories AS trajectories,
               b.min_model_version AS min_model_version, toUnixTimestamp64Milli(b.created_at) AS at_ms,
               s.step AS step, s.version AS version
        FROM (SELECT * FROM batch_groups FINAL
              WHERE group_id IN (SELECT group_id FROM rollouts FINAL WHERE rollout_id = {rollout_id:String} AND group_id != '')
              LIMIT 10) AS b
        LEFT JOIN (SELECT batch_id, step, version FROM train_steps FINAL) AS s ON s.batch_id = b.batch_id
        LIMIT 10 SETTINGS join_use_nulls = 1""",
    "group": """
        SELECT rollout_id, status, reward, max_model_version FROM rollouts FINAL
        WHERE group_id IN (SELECT group_id FROM rollouts FINAL WHERE rollout_id = {rollout_id:String} AND group_id != '')
        ORDER BY rollout_id LIMIT 100""",
}

ERRORS = {
    "by_step": """
        SELECT error_class, step, count() AS errors FROM errors FINAL GROUP BY error_class, step
        ORDER BY error_class, step LIMIT 2000""",
    "by_version": """
        SELECT model_version, error_class, count() AS errors, uniqExact(rollout_id) AS rollouts FROM errors FINAL
        GROUP BY model_version, error_class ORDER BY model_version, error_class LIMIT 2000""",
    "rollouts_by_version": """
        SELECT max_model_version AS model_version, count() AS rollouts FROM rollouts FINAL GROUP BY model_version
        ORDER BY model_version LIMIT 1000""",
    "recent": """
        SELECT rollout_id, step, error_class, message, attributor, model_version,
               toUnixTimestamp64Milli(created_at) AS created_ms
        FROM errors FINAL ORDER BY created_at DESC, event_id LIMIT 50""",
}

# What the policy does, by the weight version a rollout counts under (its newest), split and decoding (the temperature
# its first call asked for; NULL when the agent sent none): how often it calls a tool, ends on a well-formed answer
# line ({answer_line}, the format_validity reward's rule), runs out of tokens, how many calls and tokens it spends, and
# how often an error is attributed. A rollout with no recorded call counts with zero calls.
BEHAVIOUR = {
    "by_version": """
        SELECT r.max_model_version AS model_version, r.split AS split, c.temperature AS temperature,
               count() AS rollouts, avg(r.reward) AS reward_mean, avg(c.tool_calls > 0) AS tool_call_rate,
               avg(c.answer_line) AS answer_line_rate, avg(c.truncated > 0) AS truncated_rate,
               avg(c.calls) AS calls_per_rollout, if(sum(c.calls) = 0, NULL, sum(c.completion_tokens) / sum(c.calls)) AS tokens_per_call,
               avg(r.num_errors > 0) AS error_rate
        FROM (SELECT rollout_id, split, reward, num_errors, max_model_version FROM rollouts FINAL) AS r
        LEFT JOIN (
            SELECT rollout_id, count() AS calls,
                   countIf(JSONLength(response_json, 'choices', 1, 'message', 'tool_calls') > 0) AS tool_calls,
                   countIf(finish_reason = 'length') AS truncated, sum(completion_tokens) AS completion_tokens,
                   argMin(JSONExtract(request_json, 'temperature', 'Nullable(Float64)'), (started_at, seq)) AS temperature,
                   match(argMax(JSONExtractString(response_json, 'choices', 1, 'message', 'content'), (started_at, seq)),
                         {answer_line:String}) AS answer_line
            FROM llm_calls FINAL WHERE rollout_id != '' GROUP BY rollout_id) AS c ON c.rollout_id = r.rollout_id
        GROUP BY model_version, split, temperature ORDER BY model_version, split, temperature LIMIT 1000""",
}

# Feedback: what users and labelers sent (source 'feedback'), and every reward that came after its trajectory had
# gone (late: recorded as a correction, never trained on), beside the reward the rollout was trained with.
FEEDBACK = {
    "by_name": """
        SELECT name, source, late, count() AS rewards, avg(value) AS value_mean, uniqExact(rollout_id) AS rollouts
        FROM rewards FINAL WHERE source = 'feedback' OR late = 1 GROUP BY name, source, late
        ORDER BY name, source, late LIMIT 200""",
    "recent": """
        SELECT f.event_id AS event_id, f.rollout_id AS rollout_id, f.call_id AS call_id, f.name AS name, f.value AS value,
               f.source AS source, f.late AS late, f.created_ms AS created_ms, r.reward AS rollout_reward,
               r.status AS rollout_status, r.task_id AS task_id
        FROM (SELECT event_id, rollout_id, call_id, name, value, source, late,
                     toUnixTimestamp64Milli(created_at) AS created_ms
              FROM rewards FINAL WHERE source = 'feedback' OR late = 1
              ORDER BY created_ms DESC, event_id LIMIT {limit:UInt32}) AS f
        LEFT JOIN (SELECT rollout_id, reward, status, task_id FROM rollouts FINAL) AS r ON r.rollout_id = f.rollout_id
        ORDER BY created_ms DESC, event_id SETTINGS join_use_nulls = 1""",
}
