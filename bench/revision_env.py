"""Another revision of Lightwire, runnable beside this one, for benchmarks that compare against it in one run.

`revision_python(rev)` exports the revision's tree with `git archive` (the checkout is left alone), generates its
protobuf modules, and installs it (not editable) into a small virtualenv of its own whose site-packages also points
at this checkout's virtualenv for the third-party packages, so nothing is downloaded. Returns that venv's python,
the revision's CLI module and the folder to run it from (the CLI moved from lightwire.cli to lightwire.tools.cli with the layering).
"""

from __future__ import annotations

import io
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def revision_python(rev: str, work: Path) -> tuple[str, str, str]:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"], capture_output=True, text=True)
    if commit.returncode != 0:
        raise SystemExit(f"bench: no revision {rev!r} in {ROOT}: {commit.stderr.strip()}")
    src, venv = work / f"src-{commit.stdout.strip()[:10]}", work / f"venv-{commit.stdout.strip()[:10]}"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit.stdout.strip()], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    subprocess.run([sys.executable, str(src / "scripts" / "gen_proto.py"), str(src)], check=True, capture_output=True)
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # A path line, not this venv's .pth files: the editable install of this checkout must not shadow the revision's.
    (site / "lightwire-bench-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(uv), "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--python", str(python), str(src)],
                   check=True, capture_output=True)
    cli = "lightwire.tools.cli" if (src / "tools" / "cli.py").exists() else "lightwire.cli"
    # Its services run from a folder with no `lightwire` in it: `python -m` puts the working directory first on
    # sys.path, and a checkout's folder of that name (this one's, or the revision's unmapped tree) would shadow the
    # revision's installed package.
    return str(python), cli, str(venv)
