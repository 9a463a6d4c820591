"""`lightwire export` as a user runs it, against trajectories on a real topic, read back with the `datasets` library
(what TRL's trainers load) and checked field by field against what was on the topic."""

from __future__ import annotations

import asyncio
import os

import pytest

from lightwire.runtime.kafka import EventProducer
from lightwire.runtime import codec
from lightwire.v1 import events_pb2 as pb
from testing.cli_run import lightwire
from testing.samples import export_trajectory as trajectory

pytestmark = pytest.mark.integration


@pytest.fixture
def on_topic(bootstrap, collector_env) -> list[pb.Trajectory]:
    """Three groups of three rollouts (one eval), one rollout delivered twice, and a record that is no event."""
    sent = [trajectory(i, g, reward=[0.0, 1.0, 0.5][(i + g) % 3], split="eval" if g == 3 else "train") for g in (1, 2, 3) for i in range(3)]

    async def produce():
        async with EventProducer(bootstrap, "tests") as producer:
            await producer.send_many(collector_env.trajectories, [(t.rollout_id, codec.make_event("tests", trajectory=t)) for t in sent + sent[:1]])
            await producer.send_raw(collector_env.trajectories, b"junk", b"\xffnot an event")

    asyncio.run(produce())
    return sent


def run_export(tmp_path, bootstrap, prefix: str, *args: str):
    env = {**os.environ, "LW_TOPIC_PREFIX": prefix, "COLUMNS": "200"}
    done = lightwire("export", "--bootstrap", bootstrap, *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def load(path):
    from datasets import Dataset

    read = Dataset.from_json if path.suffix == ".jsonl" else Dataset.from_parquet
    return read(str(path), cache_dir=str(path.parent / "hf-cache"))


def test_transitions_export_reads_back_field_by_field_in_jsonl_and_parquet(tmp_path, bootstrap, collector_env, on_topic):
    out = tmp_path / "export" / "calls"
    stdout = run_export(tmp_path, bootstrap, collector_env.prefix, "--out", str(out), "--split", "train")
    assert "read 11 records: 9 trajectories (1 duplicates, 1 unreadable); kept 6; 12 transitions rows" in stdout.replace("\n", " ")
    want = [(t, x) for t in on_topic if t.split == "train" for x in t.transitions]
    for path in (out.with_suffix(".jsonl"), out.with_suffix(".parquet")):
        rows = sorted(load(path), key=lambda r: r["call_id"])
        assert len(rows) == len(want), path
        for row, (t, x) in zip(rows, sorted(want, key=lambda p: p[1].call_id), strict=True):
            assert row["rollout_id"] == t.rollout_id and row["group_id"] == t.group_id and row["split"] == "train"
            assert row["call_id"] == x.call_id and row["seq"] == x.seq and row["agent_name"] == "solver"
            assert row["prompt_input_ids"] == list(x.prompt_token_ids) and row["completion_input_ids"] == list(x.response_token_ids)
            assert row["response_mask"] == list(x.response_mask)
            assert row["completion_logprobs"] == pytest.approx(list(x.response_logprobs))
            assert row["input_ids"] == list(x.prompt_token_ids) + list(x.response_token_ids)
            assert row["completion_mask"] == [0] * len(x.prompt_token_ids) + list(x.response_mask)
            assert row["reward"] == t.reward and row["label"] == (t.reward >= 1.0)
            assert (row["model_version"], row["min_model_version"], row["max_model_version"]) == (
                x.model_version, t.min_model_version, t.max_model_version)


def test_pairs_export_with_text_is_what_dpo_takes(tmp_path, bootstrap, collector_env, on_topic):
    from transformers import AutoTokenizer

    from lightwire.model_cache import ensure_model
    from lightwire.settings import CommonSettings

    out = tmp_path / "pairs"
    stdout = run_export(tmp_path, bootstrap, collector_env.prefix, "--out", str(out), "--kind", "pairs", "--format", "parquet",
                        "--tokenizer", "tiny-llama", "--min-reward", "0.0")
    assert "3 pairs rows" in stdout and not out.with_suffix(".jsonl").exists()
    tok = AutoTokenizer.from_pretrained(str(ensure_model("tiny-llama", CommonSettings().cache_dir)))
    by_id = {t.rollout_id: t for t in on_topic}
    rows = load(out.with_suffix(".parquet"))
    assert sorted(rows["group_id"]) == ["g1", "g2", "g3"]
    for row in rows:
        chosen, rejected = by_id[row["chosen_rollout_id"]], by_id[row["rejected_rollout_id"]]
        group = [t for t in on_topic if t.group_id == row["group_id"]]
        assert chosen.reward == max(t.reward for t in group) and rejected.reward == min(t.reward for t in group)
        assert row["prompt_input_ids"] == list(chosen.transitions[0].prompt_token_ids)
        assert row["chosen_input_ids"] == list(chosen.transitions[0].response_token_ids)
        assert row["rejected_input_ids"] == list(rejected.transitions[0].response_token_ids)
        assert row["chosen"] == tok.decode(row["chosen_input_ids"]) and row["prompt"] == tok.decode(row["prompt_input_ids"])


def test_a_missing_topic_is_a_clear_error(tmp_path, bootstrap):
    env = {**os.environ, "LW_TOPIC_PREFIX": "no-such-prefix.", "COLUMNS": "200"}
    done = lightwire("export", "--bootstrap", bootstrap, "--out", str(tmp_path / "x"), env=env)
    assert done.returncode == 1 and "no-such-prefix.trajectories does not exist" in done.stdout
    assert not (tmp_path / "x.jsonl").exists()
