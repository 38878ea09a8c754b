#!/usr/bin/env bash
# Sets up whatever is missing, then runs the whole service in the foreground (Ctrl-C stops it).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
ensure_all
export ANJU_APP_VENV="$APP_VENV" ANJU_RASA_VENV="$RASA_VENV" ANJU_MODEL_PATH="$MODEL_PATH"
cd "$ROOT"
exec "$APP_VENV/bin/python" scripts/stack.py --data-dir "$ROOT/var"
