"""`lightwire train-offline`'s pure half: a transitions export turned back into the trajectories it came from, and
those into whole-group training batches."""

from __future__ import annotations

import pytest

from lightwire.tools.export.replay import plan_batches, read_rows, trajectories_from_rows
from lightwire.tools.export.rows import pair_rows, transition_rows
from lightwire.tools.export.run import write_rows
from testing.samples import export_trajectory


def sent() -> list:
    return [export_trajectory(i, g, reward=[0.0, 1.0, 0.5][(i + g) % 3]) for g in (1, 2, 3) for i in range(3)]


def rows_of(trajectories) -> list[dict]:
    return [r for t in trajectories for r in transition_rows(t, label_threshold=1.0)]


def trained_fields(t):
    return (t.rollout_id, t.group_id, t.task_id, t.task_type, t.split, t.reward, t.min_model_version, t.max_model_version,
            [(x.call_id, x.seq, list(x.prompt_token_ids), list(x.response_token_ids), list(x.response_mask),
              list(x.response_logprobs), x.reward, x.model_version, x.agent_name) for x in t.transitions])


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_an_export_read_back_gives_the_trajectories_it_was_written_from(tmp_path, fmt):
    original = sent()
    [path] = write_rows(rows_of(original), tmp_path / "calls", (fmt,))
    back = trajectories_from_rows(read_rows(path))
    assert [trained_fields(t) for t in back] == [trained_fields(t) for t in original]
    # float32 logprobs survive both formats exactly: the export writes what the proto held.
    assert back[0].transitions[0].response_logprobs == original[0].transitions[0].response_logprobs


def test_calls_come_back_in_seq_order_and_a_repeated_row_once():
    rows = rows_of(sent()[:1])
    back = trajectories_from_rows([rows[1], rows[0], rows[1]])
    assert [x.seq for x in back[0].transitions] == [1, 2] and back[0].num_calls == 2


def test_a_pairs_export_or_a_broken_row_is_refused_with_the_reason():
    pairs, _ = pair_rows(sent())
    with pytest.raises(ValueError, match="pairs export"):
        trajectories_from_rows(pairs)
    row = rows_of(sent()[:1])[0]
    with pytest.raises(ValueError, match="differ in length"):
        trajectories_from_rows([{**row, "response_mask": row["response_mask"][:-1]}])
    with pytest.raises(ValueError, match="lacks prompt_input_ids"):
        trajectories_from_rows([{k: v for k, v in row.items() if k != "prompt_input_ids"}])


def test_unknown_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_rows(tmp_path / "none.jsonl")
    (tmp_path / "x.csv").write_text("a\n")
    with pytest.raises(ValueError, match="jsonl or .parquet"):
        read_rows(tmp_path / "x.csv")


def test_batches_hold_whole_groups_with_stable_ids_per_epoch():
    plan = plan_batches(trajectories_from_rows(rows_of(sent())), groups_per_batch=2, epochs=2)
    assert (plan.groups, plan.trajectories, len(plan.batches)) == (3, 9, 4)
    assert [[g.group_id for g in b.groups] for b in plan.batches] == [["g1", "g2"], ["g3"], ["g1", "g2"], ["g3"]]
    assert all(len(g.trajectories) == 3 and {t.group_size for t in g.trajectories} == {3} for b in plan.batches for g in b.groups)
    ids = [b.batch_id for b in plan.batches]
    assert len(set(ids)) == 4 and all(i.startswith("offline-") for i in ids)
    assert ids == [b.batch_id for b in plan_batches(trajectories_from_rows(rows_of(sent())), 2, 2).batches]
    assert {b.min_model_version for b in plan.batches} == {0}  # off-policy by construction: never dropped as stale
    with pytest.raises(ValueError):
        plan_batches([], groups_per_batch=0)
