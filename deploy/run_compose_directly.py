"""Runs deploy/docker-compose.yml's processes directly, without Docker, to check the compose file's
wiring on a machine that cannot build or pull images (docs/DEPLOYMENT.md).

Inside a private network and mount namespace, every compose service name resolves to 127.0.0.1, and
each process gets the command, environment and healthcheck that the compose file gives it with
every ${X:-default} at its default. The differences from containers:
  - postgres: Debian's initdb/postgres with the image's user, database and password (scram over TCP);
  - python/rasa come from the venvs and the code from this checkout, instead of /app in an image;
  - /app/var/... paths point into a temp folder; /opt/anju holds the model and Whisper (bind mounts);
  - one replica of each kind (gateway-1, speech-1, media-1, rasa, actions): more would clash on ports;
  - coturn is not run.
It then talks to the stack through the front and exits non-zero if anything fails.

Needs root (unshare, mount), Debian's postgresql, nginx (--nginx; without it the front is skipped
and the turns go to gateway-1), and a PostgreSQL driver (psycopg or pg8000) in the app venv:
  "$ANJU_APP_VENV/bin/python" deploy/run_compose_directly.py --app-bin "$ANJU_APP_VENV/bin" --rasa-bin "$ANJU_RASA_VENV/bin" \
      --model "$ANJU_MODEL_PATH"
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
T0 = time.monotonic()

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--app-bin", default=os.path.join(os.environ.get("ANJU_APP_VENV", ""), "bin"))
parser.add_argument("--rasa-bin", default=os.path.join(os.environ.get("ANJU_RASA_VENV", ""), "bin"))
parser.add_argument("--model", default=os.environ.get("ANJU_MODEL_PATH", ""))
parser.add_argument("--whisper", default=str(Path.home() / ".cache/anju/models/whisper-base-ct2"))
parser.add_argument("--nginx", default=shutil.which("nginx") or "")
parser.add_argument("--pg-bin", default=(sorted(Path("/usr/lib/postgresql").glob("*/bin")) or [Path("")])[-1])
args = parser.parse_args()
if os.environ.get("ANJU_COMPOSE_NS") != "1":   # re-run inside a private network + mount namespace
    os.execvpe("unshare", ["unshare", "-n", "-m", sys.executable, *sys.argv], {**os.environ, "ANJU_COMPOSE_NS": "1"})
for what, path in (("--app-bin", Path(args.app_bin) / "python"), ("--rasa-bin", Path(args.rasa_bin) / "rasa"),
                   ("--model", Path(args.model)), ("--whisper", Path(args.whisper) / "model.bin"),
                   ("--pg-bin", Path(args.pg_bin) / "initdb")):
    if not path.is_file():
        sys.exit(f"{what}: {path} not found")
probe = "import importlib.util as u, sys; sys.exit(not (u.find_spec('psycopg') or u.find_spec('pg8000')))"
if subprocess.run([str(Path(args.app_bin) / "python"), "-c", probe]).returncode:
    sys.exit("the app venv has no PostgreSQL driver (psycopg[binary] or pg8000): the core cannot reach postgres")
APP_BIN, RASA_BIN, MODEL, WHISPER, NGINX = args.app_bin, args.rasa_bin, Path(args.model), Path(args.whisper), args.nginx
PG_BIN = Path(args.pg_bin)
FAILURES = []


def say(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def check(ok, msg):
    say(("ok    " if ok else "FAILED ") + msg)
    if not ok:
        FAILURES.append(msg)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, **kw)


tmp = Path(tempfile.mkdtemp(prefix="anju-compose-"))
os.chmod(tmp, 0o755)
text = (REPO / "deploy/docker-compose.yml").read_text()
text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)
compose = yaml.safe_load(text.replace("$$", "$"))
services = compose["services"]

# --- the namespace: loopback, names, mounts -----------------------------------------------------
sh("ip link set lo up")
sh("mount --make-rprivate /")
hosts = tmp / "hosts"
hosts.write_text("127.0.0.1 localhost " + " ".join(services) + "\n")
sh(["mount", "--bind", str(hosts), "/etc/hosts"])
sh(["mount", "-t", "tmpfs", "tmpfs", "/opt"])
os.makedirs("/opt/anju/models/whisper-base-ct2")
Path("/opt/anju/model.tar.gz").touch()
sh(["mount", "--bind", str(MODEL), "/opt/anju/model.tar.gz"])
sh(["mount", "--bind", str(WHISPER), "/opt/anju/models/whisper-base-ct2"])
sh(["mount", "-t", "tmpfs", "tmpfs", "/var/lib"])   # nginx's compiled-in temp paths
os.makedirs("/var/lib/nginx")
os.makedirs("/var/run/postgresql", exist_ok=True)
sh(["mount", "-t", "tmpfs", "tmpfs", "/var/run/postgresql"])   # the image's default socket dir, private here
sh(["chown", "postgres", "/var/run/postgresql"])
say(f"namespace ready; names {', '.join(services)} -> 127.0.0.1; model {MODEL.name}")


def env_for(name):
    svc = services[name]
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TERM")}
    image = svc.get("image", "")
    env["PATH"] = (RASA_BIN if image.startswith("anju-rasa") else APP_BIN) + ":/usr/sbin:/usr/bin:/sbin:/bin"
    env.update({"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "RASA_TELEMETRY_ENABLED": "false",
                "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"})
    env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
    for key in ("CORE_AUDIT_ANCHOR_PATH", "VIDEO_RECORDINGS_DIR"):
        if key in env:
            env[key] = env[key].replace("/app/var", str(tmp / "var"))
    return env


procs = {}


def start(name, argv):
    log = open(tmp / f"{name}.log", "wb")
    procs[name] = subprocess.Popen(argv, cwd=REPO, env=env_for(name), stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)


def healthy(name):
    test = services[name]["healthcheck"]["test"]
    argv = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
    return subprocess.run(argv, cwd=REPO, env=env_for(name), capture_output=True, timeout=15).returncode == 0


def wait(name, timeout):
    t = time.monotonic()
    while not healthy(name):
        if procs[name].poll() is not None:
            raise SystemExit(f"FAILED: {name} exited {procs[name].returncode}:\n" + (tmp / f"{name}.log").read_text()[-3000:])
        if time.monotonic() - t > timeout:
            raise SystemExit(f"FAILED: {name} not healthy after {timeout}s:\n" + (tmp / f"{name}.log").read_text()[-3000:])
        time.sleep(1)
    say(f"{name} healthy (its compose healthcheck) after {time.monotonic() - t:.1f}s")


try:
    # redis: the compose command verbatim; data dir in tmp (the image's WORKDIR is /data)
    (tmp / "redis").mkdir()
    start("redis", services["redis"]["command"] + ["--dir", str(tmp / "redis")])
    wait("redis", 30)
    # postgres: Debian's server with the image's user, database and password, scram over TCP
    pg = services["postgres"]["environment"]
    (tmp / "pg").mkdir()
    sh(["chown", "postgres", str(tmp / "pg")])
    pwfile = tmp / "pg" / "pw"
    pwfile.write_text("bootstrap-only\n")
    sh(["chown", "postgres", str(pwfile)])
    sh(["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(tmp / "pg/data"), "-U",
        "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"], capture_output=True)
    procs["postgres"] = subprocess.Popen(["runuser", "-u", "postgres", "--", str(PG_BIN / "postgres"), "-D",
                                          str(tmp / "pg/data"), "-k", "/var/run/postgresql", "-c", "listen_addresses=127.0.0.1"],
                                         stdout=open(tmp / "postgres.log", "wb"), stderr=subprocess.STDOUT)
    for _ in range(60):
        if subprocess.run(["pg_isready"], capture_output=True).returncode == 0:
            break
        time.sleep(0.5)
    sh(["psql", "-U", "postgres", "-qc",
        f"CREATE USER {pg['POSTGRES_USER']} PASSWORD '{pg['POSTGRES_PASSWORD']}'",
        "-c", f"CREATE DATABASE {pg['POSTGRES_DB']} OWNER {pg['POSTGRES_USER']}"])
    wait("postgres", 30)
    for name in ("core", "actions", "rasa", "media-1"):
        start(name, services[name]["command"])
    wait("core", 120)
    wait("media-1", 120)
    start("gateway-1", services["gateway-1"]["command"])
    start("speech-1", services["speech-1"]["command"])
    wait("gateway-1", 120)
    base = "http://gateway-1:8000"
    if NGINX:   # the front: compose's nginx.conf as is (gateway-2 resolves here too, to the same gateway)
        procs["front"] = subprocess.Popen([NGINX, "-c", str(REPO / "deploy/nginx/nginx.conf"), "-p", str(tmp), "-g",
                                           f"daemon off; error_log {tmp}/front-error.log; pid {tmp}/nginx.pid;"],
                                          stdout=open(tmp / "front.log", "wb"), stderr=subprocess.STDOUT)
        wait("front", 30)
        base = "http://front"
    say(f"talking to {base}")

    def call(method, path, body=None, token=None):
        req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def texts(reply):
        return " | ".join(m.get("text") or "" for m in (reply or {}).get("messages", []))

    status, body = call("POST", "/api/session")
    check(status == 200 and "token" in body, f"POST /api/session: {status}")
    token = body["token"]
    for question in ("租房可以提取公积金吗", "租房能取公积金吗"):   # Rasa still loading: the knowledge base answers, or 503
        status, reply = call("POST", "/api/chat", {"text": question}, token)
        say(f"before Rasa is ready, {question!r}: {status} {texts(reply)[:60] if status == 200 else reply}")
    wait("rasa", 400)
    wait("actions", 60)
    wait("speech-1", 200)
    status, ready = call("GET", "/readyz")
    check(status == 200 and ready["status"] == "ready", f"GET /readyz: {status} {ready}")
    for question, expected in (("租房可以提取公积金吗", "租房"), ("常州呢", "常州"), ("查一下我的余额", "身份证")):
        t = time.monotonic()
        status, reply = call("POST", "/api/chat", {"text": question}, token)
        check(status == 200 and expected in texts(reply),
              f"turn {question!r}: {status} in {time.monotonic() - t:.2f}s: {texts(reply)[:70]}")
    password = services["redis"]["environment"]["REDIS_PASSWORD"]
    keys = subprocess.run(["redis-cli", "--no-auth-warning", "-a", password, "--scan", "--pattern", "*"],
                          capture_output=True, text=True).stdout.split()
    check(any(k.endswith("media-1:8100") for k in keys), f"media-1 registered in redis: {[k for k in keys if 'node' in k]}")
    check(any("tracker" in k or k.startswith("anju") for k in keys), f"redis holds {len(keys)} keys (sessions, trackers)")
    counts = subprocess.run(["psql", "-U", "postgres", "-d", "anju", "-Atc", "select count(*) from persons",
                             "-c", "select count(*) from audit_records"], capture_output=True, text=True).stdout.split()
    check(len(counts) == 2 and int(counts[0]) > 0 and int(counts[1]) > 0,
          f"the core's PostgreSQL: persons {counts[:1]}, audit records {counts[1:]}")
finally:
    for name, proc in reversed(list(procs.items())):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, 15) if name != "postgres" else proc.terminate()
            except ProcessLookupError:
                pass
    for proc in procs.values():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    say(f"stopped; logs in {tmp}")
sys.exit(f"{len(FAILURES)} check(s) failed" if FAILURES else 0)
