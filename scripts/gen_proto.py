"""Generates the Python protobuf and gRPC modules from proto/ with grpcio-tools.

The output (lightwire/v1/*_pb2*.py and .pyi stubs) is build output: git ignores it and nobody edits it.
`python scripts/gen_proto.py [OUT_DIR]` writes into OUT_DIR (default: the repository root), so a test can
generate into a temporary folder and compare it with what the package imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("lightwire") / "v1"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
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
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed: see the messages above")
    package_dir = out_dir / PACKAGE
    (package_dir / "__init__.py").write_text('"""Generated from proto/lightwire/v1 by scripts/gen_proto.py. Do not edit."""\n')
    return sorted(p for p in package_dir.iterdir() if p.is_file())


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    written = generate(target)
    print(f"generated {len(written)} files in {target / PACKAGE}")
