"""Prints the cached virtualenv's path for this lock file and interpreter: <cache>/venv-<hash>.

Run with the interpreter the venv is built from. Keying by the lock's content means a dependency change
builds a fresh venv while every clone with the same lock reuses the cached one.
"""

import hashlib
import os
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
cache = Path(os.environ.get("LW_CACHE_DIR") or Path.home() / ".cache" / "lightwire")
locks = [root / "requirements" / "dev.lock", root / "requirements" / "nodeps.txt"]
digest = hashlib.sha256(b"".join(p.read_bytes() for p in locks) + sys.version.encode()).hexdigest()[:16]
print(cache / f"venv-{digest}")
