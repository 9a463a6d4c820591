"""One fully populated example of every event payload, for codec and broker round-trip tests."""

from __future__ import annotations

from lightwire.runtime import codec
from lightwire.v1 import events_pb2 as pb


def sample_payloads(rollout_id: str = "r-sample") -> dict[str, object]:
    task = pb.Task(
        task_id="t-1", group_id="g-1", task_type="arith", input_json='{"q": "2+3"}', reference_json='{"answer": 5}',
        group_size=4, index_in_group=2, model_version=3, attempt=1, split="train", metadata={"difficulty": "easy"},
    )
    completion = pb.Completion(
        index=0, text="5", token_ids=[33, 34], logprobs=[-0.25, -1.5], finish_reason="stop",
        tool_calls_json='[{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "{}"}}]',
        tool_call_parse_error=False,
    )
    error = pb.ErrorInfo(type="ValueError", message="bad", stack="Traceback ...", error_class="tool_exception")
    transition = pb.Transition(
        call_id=f"{rollout_id}/1", seq=1, prompt_token_ids=[1, 2, 3], response_token_ids=[33, 34, 7],
        response_mask=[1, 1, 0], response_logprobs=[-0.25, -1.5, 0.0], reward=0.5, model_version=3,
        agent_name="solver", merged_calls=2,
    )
    trajectory = pb.Trajectory(
        rollout_id=rollout_id, task_id="t-1", group_id="g-1", task_type="arith", split="train",
        status=pb.ROLLOUT_STATUS_SUCCEEDED, transitions=[transition], reward=0.5,
        reward_components={"exact": 1.0, "latency": -0.5},
        attributions=[pb.Attribution(error_class="loop", step=1, message="3 identical calls", attributor="loop")],
        min_model_version=3, max_model_version=3, num_calls=2, merge_mismatches=1, group_size=4,
    )
    return {
        "task": task,
        "llm_call": pb.LlmCall(
            rollout_id=rollout_id, call_id=f"{rollout_id}/1", seq=1, model="tiny-llama", model_version=3,
            endpoint="chat.completions", prompt_token_ids=[1, 2, 3], completions=[completion],
            request_json='{"messages": []}', response_json='{"choices": []}', latency_ms=12.5, prompt_tokens=3,
            completion_tokens=2, http_status=200, agent_name="solver", started_unix_ms=1_700_000_000_000,
            gateway_id="gateway-1", stream=True,
        ),
        "span": pb.AgentSpan(
            rollout_id=rollout_id, span_id="s1", parent_span_id="s0", name="calculator", kind="tool",
            start_unix_ms=1, end_unix_ms=2, attributes={"expr": "2+3"}, error=error, after_seq=1, agent_name="solver",
        ),
        "reward": pb.RolloutReward(rollout_id=rollout_id, call_id=f"{rollout_id}/1", name="exact", value=1.0, source="agent", late=True, comment="ok"),
        "rollout_started": pb.RolloutStarted(rollout_id=rollout_id, task=task, worker_id="w-1", gateway_id="gateway-1"),
        "rollout_finished": pb.RolloutFinished(
            rollout_id=rollout_id, status=pb.ROLLOUT_STATUS_FAILED, num_calls=2, task_id="t-1", group_id="g-1", error=error
        ),
        "feedback": pb.Feedback(feedback_id="f-1", call_id=f"{rollout_id}/1", name="thumbs", value=-1.0, comment="meh", user_id="u-9"),
        "trajectory": trajectory,
        "batch": pb.TrainingBatch(
            batch_id="b-1", groups=[pb.TrajectoryGroup(group_id="g-1", task_id="t-1", trajectories=[trajectory])], min_model_version=3
        ),
        "train_step": pb.TrainStep(
            model="tiny-llama", step=7, version=4, loss=0.12, kl=0.01, reward_mean=0.4, reward_std=0.2,
            clip_fraction=0.05, tokens_per_s=812.0, num_trajectories=8, num_groups=2, dropped_stale=1, batch_id="b-1",
        ),
        "weight_version": pb.WeightVersion(model="tiny-llama", version=4, uri="file:///tmp/v4", base_model="tiny-llama", step=7, format="full"),
        "prompt_policy": pb.PromptPolicy(
            task_type="arith", version=2, system_mode="extend", system="Use the calculator.",
            demonstrations=[pb.Demonstration(messages_json='[{"role": "user", "content": "2+3"}]', source_rollout_id=rollout_id, source_reward=1.0)],
            serving=True, optimiser="demonstrations", score=0.75, scored_rollouts=16, parent_version=1, created_unix_ms=1_700_000_000_000,
        ),
        "dead_letter": pb.DeadLetter(topic="lw.feedback", partition=1, offset=42, key=b"k", value=b"\xff", reason="bad", consumer="collector"),
    }


def sample_events(rollout_id: str = "r-sample") -> list[pb.Event]:
    return [codec.make_event("tests", **{name: payload}) for name, payload in sample_payloads(rollout_id).items()]


def export_trajectory(i: int, group: int, reward: float, split: str = "train") -> pb.Trajectory:
    """Rollout i of group `group`: two calls, the first with a masked observation token, versions that differ
    within the rollout; token ids inside every test model's vocabulary."""
    t = pb.Trajectory(rollout_id=f"r{group}-{i}", task_id=f"t{group}", group_id=f"g{group}", task_type="arith", split=split,
                      status=pb.ROLLOUT_STATUS_SUCCEEDED, reward=reward, min_model_version=group, max_model_version=group + i % 2,
                      num_calls=2, group_size=3)
    for k in range(2):
        prompt = [1, 100 + group, 200 + k] + list(range(300, 300 + 40 * k))
        response = [400 + i, 500 + k, 2]
        t.transitions.add(call_id=f"{t.rollout_id}/{k + 1}", seq=k + 1, prompt_token_ids=prompt, response_token_ids=response,
                          response_mask=[1, 1, 1] if k else [1, 0, 1], response_logprobs=[-0.5 - i, -1.0, -0.125 * k],
                          reward=reward, model_version=group + (i % 2) * k, agent_name="solver")
    return t
