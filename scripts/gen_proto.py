"""Generates the Python protobuf and gRPC modules from proto/ with grpcio-tools.

The output (lightwire/v1/*_pb2*.py and .pyi stubs) is build output: git ignores it and nobody edits it.
`python scripts/gen_proto.py [OUT_DIR]` writes into OUT_DIR (default: the repository root), so a test can
generate into a temporary folder and compare it with what the package imports.
`python scripts/gen_proto.py --client [OUT_DIR]` writes the agent-side subset (events, agent_hub) into
client/lightwire_client/_gen with its imports pointing there, so lightwire-client installs on its own.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("lightwire") / "v1"


CLIENT_PROTOS = ("events", "agent_hub")
CLIENT_OUT = ROOT / "client" / "lightwire_client" / "_gen"


def proto_files(names: tuple[str, ...] | None = None) -> list[Path]:
    found = sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))
    return [p for p in found if names is None or p.stem in names]


def generate_client(out_dir: Path = CLIENT_OUT) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), proto_files(CLIENT_PROTOS))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for path in sorted((Path(tmp) / PACKAGE).iterdir()):
            text = re.sub(r"\bfrom lightwire\.v1 import\b", "from lightwire_client._gen import", path.read_text())
            (out_dir / path.name).write_text(text)
            written.append(out_dir / path.name)
        return written


def generate(out_dir: Path, files: list[Path] | None = None) -> list[Path]:
    from grpc_tools import protoc  # build-time dependency only
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p.relative_to(PROTO_ROOT)) for p in (files or proto_files())],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed: see the messages above")
    package_dir = out_dir / PACKAGE
    (package_dir / "__init__.py").write_text('"""Generated from proto/lightwire/v1 by scripts/gen_proto.py. Do not edit."""\n')
    return sorted(p for p in package_dir.iterdir() if p.is_file())


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--client"]:
        target = Path(args[1]) if len(args) > 1 else CLIENT_OUT
        written = generate_client(target)
        print(f"generated {len(written)} files in {target}")
    else:
        target = Path(args[0]) if args else ROOT
        written = generate(target)
        print(f"generated {len(written)} files in {target / PACKAGE}")
