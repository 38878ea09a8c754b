# The app venv as an image (Python 3.11): gateway, sandbox core, media nodes, speech server.
# Build from the repository root:  docker build -f deploy/Dockerfile.app -t anju-app .
# Not built on the development machine (no container registry is reachable there): see docs/DEPLOYMENT.md.
FROM python:3.11-slim-bookworm

# espeak-ng: the gateway's text-to-speech (aiortc's PyAV wheels carry their own codecs; ffmpeg,
# which scripts/setup.sh installs, is only the tests' ffprobe).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends espeak-ng \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin anju
WORKDIR /app

# Exactly the locked versions, as scripts/setup.sh installs them (--no-deps).
COPY requirements/app.lock requirements/app.lock
RUN pip install --no-cache-dir --no-deps -r requirements/app.lock

# Whisper base for the speech server, assembled once by scripts/setup.sh (ensure_speech_model) and
# copied to deploy/build/whisper-base-ct2/ before the build; checked against the committed sums here.
COPY speech/whisper-base-ct2.sha256 /opt/anju/whisper-base-ct2.sha256
COPY deploy/build/whisper-base-ct2/ /opt/anju/models/whisper-base-ct2/
RUN cd /opt/anju/models/whisper-base-ct2 && sha256sum --quiet -c /opt/anju/whisper-base-ct2.sha256

COPY bot/ bot/
COPY fund/ fund/
COPY gateway/ gateway/
COPY speech/ speech/
COPY video/ video/
COPY web_widget/ web_widget/
COPY nlu_data/ nlu_data/
# /app is HOME: writable by anju (caches), the code in it stays root's.
RUN mkdir -p /app/var/recordings /app/var/audit && chown anju /app && chown -R anju /app/var

ENV PYTHONPATH=/app PYTHONUNBUFFERED=1 SQLALCHEMY_SILENCE_UBER_WARNING=1 \
    WHISPER_MODEL_PATH=/opt/anju/models/whisper-base-ct2
USER anju
# The command is set per service (compose `command:`, k8s `args:`): python -m gateway | fund |
# speech | gateway.handoff.node, as scripts/stack.py runs them.
CMD ["python", "-m", "gateway", "--host", "0.0.0.0", "--port", "8000"]
