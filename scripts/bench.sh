#!/usr/bin/env bash
# Runs one benchmark from bench/ with the project's venvs and model: bash scripts/bench.sh chat_load [args]
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
[ $# -ge 1 ] || die "usage: bash scripts/bench.sh NAME [args]   (NAME: a script in bench/, without .py)"
ensure_all
export ANJU_APP_VENV="$APP_VENV" ANJU_RASA_VENV="$RASA_VENV" ANJU_MODEL_PATH="$MODEL_PATH"
cd "$ROOT"
name="$1"; shift
exec "$APP_VENV/bin/python" "bench/$name.py" "$@"
