"""lightwire-client: take tasks from the Lightwire gateway, run your agent unchanged, report rewards and errors.

    from lightwire_client import Worker, emit_reward

    def solve(rollout):                       # rollout.task, rollout.openai_client(), rollout.base_url
        client = rollout.openai_client()
        ...
        emit_reward(1.0)

    Worker(solve, target="127.0.0.1:50052").run_forever()
"""

from lightwire_client.context import Rollout, current_rollout, emit_reward, emit_span
from lightwire_client.decorator import rollout
from lightwire_client.worker import Worker, WorkerConfig

__all__ = ["Rollout", "Worker", "WorkerConfig", "current_rollout", "emit_reward", "emit_span", "rollout"]
