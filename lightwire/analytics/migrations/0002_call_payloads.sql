-- What a call said, so one rollout's whole trajectory can be read back from the analytics.
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS request_json String;
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS response_json String

