#!/usr/bin/env bash
# Installs what is missing, reusing the caches: the virtualenv (keyed by requirements/dev.lock and nodeps.txt), then
# lightwire itself (editable, into that venv), the generated protobuf modules and the system Chromium the dashboard's
# browser test drives (scripts/ensure_chromium.sh).
# Usage: scripts/bootstrap.sh   (LW_CACHE_DIR overrides the cache, default ~/.cache/lightwire)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${LW_PYTHON:-python3}
CACHE=${LW_CACHE_DIR:-$HOME/.cache/lightwire}
UV_VERSION=0.13.8
VENV=$("$PYTHON" "$ROOT/scripts/venv_path.py")
UV_HOME=$CACHE/uv-$UV_VERSION
export UV_CACHE_DIR=$CACHE/uv-cache UV_LINK_MODE=copy

if [ ! -x "$UV_HOME/bin/uv" ]; then
  echo "bootstrap: installing uv $UV_VERSION into $UV_HOME"
  rm -rf "$UV_HOME"
  "$PYTHON" -m venv "$UV_HOME"
  "$UV_HOME/bin/pip" install -q "uv==$UV_VERSION"
fi
UV=$UV_HOME/bin/uv

if [ ! -f "$VENV/.complete" ]; then
  echo "bootstrap: building $VENV from requirements/dev.lock (torch from PyPI: a few GB the first time)"
  start=$(date +%s)
  rm -rf "$VENV"
  "$UV" venv -q -p "$PYTHON" "$VENV"
  "$UV" pip install -q --python "$VENV/bin/python" -r "$ROOT/requirements/dev.lock"
  "$UV" pip install -q --python "$VENV/bin/python" --no-deps -r "$ROOT/requirements/nodeps.txt"
  date -u +%FT%TZ > "$VENV/.complete"
  echo "bootstrap: virtualenv ready in $(( $(date +%s) - start ))s"
fi

bash "$ROOT/scripts/ensure_chromium.sh"
"$VENV/bin/python" "$ROOT/scripts/gen_proto.py" > /dev/null
"$VENV/bin/python" "$ROOT/scripts/gen_proto.py" --client > /dev/null
"$UV" pip install -q --python "$VENV/bin/python" --no-deps -e "$ROOT" -e "$ROOT/client"
echo "$VENV"
