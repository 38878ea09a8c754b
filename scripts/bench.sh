#!/usr/bin/env bash
# Runs one benchmark from bench/ with the project's venvs and model: bash scripts/bench.sh chat_load [args]
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
[ $# -ge 1 ] || die "usage: bash scripts/bench.sh NAME [args]   (NAME: a script in bench/, without .py)"
ensure_all
export ANJU_APP_VENV="$APP_VENV" ANJU_RASA_VENV="$RASA_VENV" ANJU_MODEL_PATH="$MODEL_PATH"
cd "$ROOT"
name="$1"; shift
if [ "$name" = chat_load ] && [ ! -x "$CACHE/tools/py-spy/bin/py-spy" ]; then
  # py-spy (a sampling profiler, one static binary) for chat_load --profile; kept out of the venvs.
  step "Installing py-spy into $CACHE/tools/py-spy (once)"
  "$APP_VENV/bin/python" -m pip install -q --target "$CACHE/tools/py-spy" py-spy >&2 \
    || echo "WARNING: py-spy could not be installed: chat_load --profile will say so" >&2
fi
exec "$APP_VENV/bin/python" "bench/$name.py" "$@"
