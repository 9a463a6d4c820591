"""The generated protobuf modules are build output: they must match what proto/ generates now."""

import filecmp
import subprocess
import sys
from pathlib import Path

import lightwire.v1

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_not_stale(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), str(tmp_path)], check=True, capture_output=True)
    fresh = tmp_path / "lightwire" / "v1"
    installed = Path(lightwire.v1.__file__).parent
    names = sorted(p.name for p in fresh.iterdir() if p.is_file())
    assert names == sorted(p.name for p in installed.iterdir() if p.is_file() and p.suffix in {".py", ".pyi"})
    match, mismatch, errors = filecmp.cmpfiles(fresh, installed, names, shallow=False)
    assert not mismatch and not errors, f"stale generated code, run scripts/gen_proto.py: {mismatch + errors}"


def test_every_proto_file_is_generated():
    protos = sorted(p.stem for p in (ROOT / "proto" / "lightwire" / "v1").glob("*.proto"))
    for stem in protos:
        assert (Path(lightwire.v1.__file__).parent / f"{stem}_pb2.py").exists()
