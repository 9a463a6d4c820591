-- The prompt policy version the gateway served each call under (lw.prompts; 0: the agent's own messages), so rewards
-- can be read per prompt version as they are per weight version.
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS prompt_version Int64 DEFAULT 0
