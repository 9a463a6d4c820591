"""The read side of the analytics: named queries for the dashboard, the CLI and tests (ClickHouse SQL)."""

from __future__ import annotations

SUMMARY = {
    "reward_by_version": """
        SELECT max_model_version AS model_version, split, count() AS rollouts, avg(reward) AS reward_mean,
               stddevSampStable(reward) AS reward_std
        FROM rollouts FINAL GROUP BY model_version, split ORDER BY model_version, split""",
    "reward_by_task": """
        SELECT task_type, task_id, count() AS rollouts, avg(reward) AS reward_mean
        FROM rollouts FINAL GROUP BY task_type, task_id ORDER BY rollouts DESC, task_id LIMIT 100""",
    "errors_by_class": """
        SELECT error_class, step, count() AS errors FROM errors FINAL GROUP BY error_class, step ORDER BY errors DESC, error_class, step""",
    "latency": """
        SELECT model, count() AS calls, quantile(0.5)(latency_ms) AS p50_ms, quantile(0.9)(latency_ms) AS p90_ms,
               quantile(0.99)(latency_ms) AS p99_ms
        FROM llm_calls FINAL GROUP BY model ORDER BY model""",
    "usage": """
        SELECT model, model_version, count() AS calls, sum(prompt_tokens) AS prompt_tokens,
               sum(completion_tokens) AS completion_tokens
        FROM llm_calls FINAL GROUP BY model, model_version ORDER BY model, model_version""",
    "status": """
        SELECT status, count() AS rollouts FROM rollouts FINAL GROUP BY status ORDER BY status""",
    "train_steps": """
        SELECT step, version, loss, kl, reward_mean, reward_std, clip_fraction, tokens_per_s
        FROM train_steps FINAL ORDER BY step DESC LIMIT 50""",
    "late_rewards": """
        SELECT name, count() AS rewards, avg(value) AS value_mean FROM rewards FINAL WHERE late = 1 GROUP BY name ORDER BY name""",
}

ROLLOUT = {
    "rollout": "SELECT * FROM rollouts FINAL WHERE rollout_id = {rollout_id:String}",
    "calls": "SELECT * FROM llm_calls FINAL WHERE rollout_id = {rollout_id:String} ORDER BY seq",
    "rewards": "SELECT * FROM rewards FINAL WHERE rollout_id = {rollout_id:String} ORDER BY created_at, event_id",
    "errors": "SELECT * FROM errors FINAL WHERE rollout_id = {rollout_id:String} ORDER BY step, event_id",
}

COUNTS = {
    "rollouts": "SELECT count() AS n, uniqExact(rollout_id) AS distinct_ids FROM rollouts FINAL",
    "llm_calls": "SELECT count() AS n, uniqExact(event_id) AS distinct_ids FROM llm_calls FINAL",
    "rewards": "SELECT count() AS n, uniqExact(event_id) AS distinct_ids FROM rewards FINAL",
    "errors": "SELECT count() AS n, uniqExact(event_id) AS distinct_ids FROM errors FINAL",
}
