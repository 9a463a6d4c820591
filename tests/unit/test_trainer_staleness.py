from pathlib import Path

from lightwire.services.trainer.checkpoints import CheckpointStore
from lightwire.services.trainer.staleness import decide


def test_within_the_bound_a_batch_trains_at_full_weight():
    d = decide(batch_version=3, current_version=5, max_staleness=2, policy="drop")
    assert (d.train, d.weight, d.lag) == (True, 1.0, 2)


def test_beyond_the_bound_a_batch_is_dropped_or_reweighted():
    d = decide(batch_version=1, current_version=5, max_staleness=2, policy="drop")
    assert (d.train, d.weight, d.lag) == (False, 0.0, 4)
    # lag 4, bound 2: excess 2 -> weight 1 / (1 + 2) = 1/3
    r = decide(batch_version=1, current_version=5, max_staleness=2, policy="reweight")
    assert r.train and abs(r.weight - 1 / 3) < 1e-12


def test_checkpoints_are_written_atomically_and_pruned(tmp_path: Path):
    store = CheckpointStore(tmp_path / "ckpt", keep=2)
    seen_partial = []

    def save(version):
        def _save(d: Path):
            seen_partial.append(store.path(version).exists())
            (d / "model.safetensors").write_bytes(b"x" * version)
        return _save

    uris = [store.write(v, save(v)) for v in (2, 3, 4)]
    assert seen_partial == [False, False, False], "the final directory appears only when complete"
    assert store.versions() == [3, 4]
    assert uris[-1] == (tmp_path / "ckpt" / "v000004").resolve().as_uri()
    assert (store.path(4) / "model.safetensors").read_bytes() == b"xxxx"
    assert not list((tmp_path / "ckpt").glob(".*partial"))
