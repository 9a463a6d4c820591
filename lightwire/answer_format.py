"""The answer line a task's final reply is expected to state ('Answer: 42'), shared by the `format_validity` reward
and the analytics' well-formed-answer rate, so both judge a reply by the same rule. Matched case-insensitively."""

ANSWER_LINE = r"(?:final answer|answer)\s*[:=]\s*-?\d+(?:\.\d+)?"
