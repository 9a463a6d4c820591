#!/usr/bin/env bash
# The dashboard's browser test (tests/integration/test_dashboard_browser.py) drives Debian's Chromium through
# Playwright; Playwright never downloads a browser here. Installs the `chromium` package when it is missing.
# Messages go to stderr: `make setup` hides bootstrap's stdout.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: chromium is not installed and apt-get is not available: install Chromium (the browser test fails without it)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo -n"
fi
echo "bootstrap: installing chromium (apt) for the dashboard's browser test" >&2
if ! $SUDO apt-get install -y -q chromium >&2; then
  $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q chromium >&2 \
    || echo "bootstrap: could not install chromium with apt-get (run it as root: apt-get install -y chromium); the browser test fails without it" >&2
fi
exit 0
