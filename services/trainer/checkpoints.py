"""Checkpoints written atomically (a temporary directory, then one rename) and named by weight version."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

VERSION_DIR = "v{version:06d}"


class CheckpointStore:
    def __init__(self, root: Path, keep: int = 3):
        self.root = root.resolve()
        self.keep = keep

    def path(self, version: int) -> Path:
        return self.root / VERSION_DIR.format(version=version)

    def write(self, version: int, save: Callable[[Path], None]) -> str:
        """`save(dir)` writes the files; readers never see a half-written checkpoint. Returns its file:// URI."""
        final = self.path(version)
        staging = self.root / f".{final.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        save(staging)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        self._prune()
        return final.as_uri()

    def versions(self) -> list[int]:
        if not self.root.exists():
            return []
        return sorted(int(p.name[1:]) for p in self.root.iterdir() if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit())

    def _prune(self) -> None:
        # Inference may still be loading the previous version: keep a few, drop the oldest.
        for version in self.versions()[: -self.keep]:
            shutil.rmtree(self.path(version), ignore_errors=True)
