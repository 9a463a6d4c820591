"""The one way tests and benches open a browser: Debian's Chromium (the `chromium` package), driven by Playwright.

Playwright's own browser download is never used: `make test` installs the system package when it is missing
(scripts/ensure_chromium.sh), and without it this fails with what to install, rather than skipping.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        raise RuntimeError("no Chromium on this machine: `apt-get install -y chromium` (make test does it through "
                           "scripts/ensure_chromium.sh); the dashboard's browser test needs the system browser")
    return found


def launch_chromium(playwright):
    """A headless Chromium browser from the system package."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
