"""Starts and supervises the whole service on one machine; used by scripts/run.sh and the tests.

Processes, in start order: a private redis-server (AOF, fsync on every write: the handoff
queue, sessions and parked audit records live there and must survive kill -9) and a second one for
Rasa's tracker and lock stores (AOF written before each reply, fsynced by the kernel), the sandbox core, the Rasa action server,
`rasa run --enable-api` (one pair per core in the run command) and the gateway. Each is waited on through its
health endpoint (never a sleep), logs to <data_dir>/log/<name>.log, and is stopped in
reverse order on Ctrl-C or SIGTERM. Venv and model paths come from scripts/setup.sh via
ANJU_APP_VENV, ANJU_RASA_VENV and ANJU_MODEL_PATH.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("anju.stack")


class StackError(RuntimeError):
    """A process failed to start or become healthy."""


# Below the kernel's ephemeral range (32768-60999 by default): a port the kernel hands out as
# "free" lies in that range, and a client's outgoing connection (to redis, to the core) can take
# it before the service binds it, which once failed rasa with "address already in use".
SERVICE_PORTS = range(20000, 32768)


def free_port(taken: frozenset[int] = frozenset()) -> int:
    for _ in range(500):
        port = random.choice(SERVICE_PORTS)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise StackError(f"no free port in {SERVICE_PORTS.start}-{SERVICE_PORTS.stop - 1}")


@dataclass
class Ports:
    redis: int = 6390
    core: int = 8001
    actions: int = 5055
    rasa: int = 5005
    gateway: int = 8000
    speech: int = 2700
    bot_redis: int = 6391

    @classmethod
    def free(cls) -> "Ports":
        ports: list[int] = []
        for _ in fields(cls):
            ports.append(free_port(frozenset(ports)))
        return cls(*ports)


# Rasa runs one process per core, each on one thread: the e5 sentence encoder (OpenMP) and TensorFlow
# otherwise start a thread per core in every process, and on a busy machine OpenMP's spinning threads
# fight each other: one encoding took 86 ms at the median and up to 1.2 s instead of 24 ms.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "TF_NUM_INTRAOP_THREADS": "1",
              "TF_NUM_INTEROP_THREADS": "1"}


@dataclass
class Service:
    name: str
    argv: list[str]
    health_url: Optional[str]
    timeout_s: float
    check: Optional[Callable[[], bool]] = None
    process: Optional[subprocess.Popen] = None
    log_path: Optional[Path] = None
    launched_at: float = 0.0
    ready: bool = False
    env: dict[str, str] = field(default_factory=dict)  # this process only, over Stack.environment()


@dataclass
class Stack:
    data_dir: Path
    model_path: Path
    app_venv: Path
    rasa_venv: Path
    ports: Ports = field(default_factory=Ports)
    env_overrides: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    media_nodes: int = 0  # media node processes (gateway.handoff.node); 0 keeps media in the gateway
    # Rasa + action server pairs behind the gateway (one per core in the run command; tests use one).
    bot_processes: int = 1
    # ANJU_ENV of every process: "development" for the run command, "test" for tests and benches.
    # Every service refuses development secrets in "production" (and defaults to it when unset).
    env_name: str = "test"

    def __post_init__(self) -> None:
        if not Path(self.model_path).is_file():  # rasa silently loads another model otherwise
            raise StackError(f"model not found: {self.model_path}")
        self.data_dir = Path(self.data_dir).resolve()
        (self.data_dir / "log").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "redis").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "redis-bot").mkdir(parents=True, exist_ok=True)
        self.rasa_token = os.environ.get("RASA_TOKEN") or secrets.token_urlsafe(24)
        self.core_token = os.environ.get("CORE_API_TOKEN") or secrets.token_urlsafe(24)
        # Core and gateway get the same reviewer token (the core's review API, the console's review tab).
        self.reviewer_token = os.environ.get("CORE_REVIEWER_TOKEN") or secrets.token_urlsafe(24)
        self.action_server_token = os.environ.get("ACTION_SERVER_TOKEN") or secrets.token_urlsafe(24)
        self.identity_assertion_key = os.environ.get("IDENTITY_ASSERTION_KEY") or secrets.token_urlsafe(24)
        self.rasa_gateway_token = os.environ.get("RASA_GATEWAY_TOKEN") or secrets.token_urlsafe(24)
        # The audit chain's key must outlive a restart, or the chain kept in data_dir stops verifying.
        self.audit_key = os.environ.get("CORE_AUDIT_KEY") or self.kept_secret("audit.key")
        p = self.ports
        self.urls = {
            "redis": f"redis://127.0.0.1:{p.redis}/0",
            "redis-bot": f"redis://127.0.0.1:{p.bot_redis}/0",
            "core": f"http://127.0.0.1:{p.core}",
            "actions": f"http://127.0.0.1:{p.actions}",
            "rasa": f"http://127.0.0.1:{p.rasa}",
            "gateway": f"http://127.0.0.1:{p.gateway}",
            "speech": f"ws://127.0.0.1:{p.speech}",
        }
        self.speech_secret_file = self.data_dir / "secrets" / "speech.secret"
        self.kept_secret("speech.secret")
        app_py, rasa_bin = str(self.app_venv / "bin" / "python"), str(self.rasa_venv / "bin" / "rasa")
        self.services = {s.name: s for s in [
            Service("redis", ["redis-server", "--port", str(p.redis), "--bind", "127.0.0.1",
                              "--dir", str(self.data_dir / "redis"), "--appendonly", "yes",
                              "--appendfsync", "always", "--save", "", "--protected-mode", "yes"],
                    None, 20, check=lambda: self._redis_ok(p.redis)),
            # Rasa's tracker and lock stores: Rasa's redis client is synchronous, so each of a turn's
            # ~6 writes held Rasa's event loop for the disk's fsync (~2 ms each, more under load).
            # Here the AOF is written before every reply but fsynced by the kernel: a killed redis
            # loses nothing it acknowledged; only a crashed machine can lose the last seconds of
            # conversation state — never a queue entry, session or audit record (those stay in
            # "redis"). Not `everysec`: while a background fsync is slow, redis may postpone the
            # write for up to 2 s yet still reply (its documented "up to 2 seconds" of loss).
            Service("redis-bot", ["redis-server", "--port", str(p.bot_redis), "--bind", "127.0.0.1",
                                  "--dir", str(self.data_dir / "redis-bot"), "--appendonly", "yes",
                                  "--appendfsync", "no", "--save", "", "--protected-mode", "yes"],
                    None, 20, check=lambda: self._redis_ok(p.bot_redis)),
            Service("core", [app_py, "-m", "fund", "--host", "127.0.0.1", "--port", str(p.core)],
                    self.urls["core"] + "/healthz", 60),
            Service("actions", [str(self.rasa_venv / "bin" / "python"), "-m", "actions", "--port", str(p.actions)],
                    self.urls["actions"] + "/health", 120),
            Service("rasa", [rasa_bin, "run", "--enable-api", "-i", "127.0.0.1", "-p", str(p.rasa),
                             f"--auth-token={self.rasa_token}", "-m", str(self.model_path),
                             "--endpoints", "bot/endpoints.yml", "--credentials", "bot/credentials.yml"],
                    None, 240, check=self._rasa_ok, env={**ONE_THREAD, "REDIS_PORT": str(p.bot_redis)}),
            # Speech recognition over the vosk-server protocol, loopback only, secret in ?secret= (speech/).
            Service("speech", [app_py, "-m", "speech", "--port", str(p.speech), "--secret-file",
                               str(self.speech_secret_file), "--whisper-model",
                               os.environ.get("WHISPER_MODEL_PATH", str(Path.home() / ".cache/anju/models/whisper-base-ct2"))],
                    None, 120, check=lambda: self._tcp_ok(p.speech)),
            Service("gateway", [app_py, "-m", "gateway", "--host", "127.0.0.1", "--port", str(p.gateway)],
                    self.urls["gateway"] + "/healthz", 60),
        ]}
        if self.media_nodes:
            self.add_media_nodes(self.media_nodes)
        for _ in range(self.bot_processes - 1):
            self.add_bot_process()

    def kept_secret(self, name: str) -> str:
        """A random secret made once per data dir (mode 0600) and read back on every later start."""
        path = self.data_dir / "secrets" / name
        if not path.exists():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip()

    def add_media_nodes(self, count: int) -> list[str]:
        """Adds media node processes, started before the gateway, and points the gateway at them.
        On a running stack, start the returned names and restart the gateway."""
        app_py = str(self.app_venv / "bin" / "python")
        names = []
        for _ in range(count):
            taken = frozenset(vars(self.ports).values())
            name, port = f"media-{sum(n.startswith('media-') for n in self.services)}", free_port(taken)
            self.services[name] = Service(name, [app_py, "-m", "gateway.handoff.node", "--port", str(port)],
                                          f"http://127.0.0.1:{port}/healthz", 60)
            names.append(name)
        gateway = self.services.pop("gateway")
        self.services["gateway"] = gateway  # keep the gateway last: it routes calls to the nodes
        self.env_overrides["VIDEO_MEDIA_NODES"] = "true"
        return names

    def add_replica(self, of: str, env: Optional[dict[str, str]] = None) -> str:
        """Another "rasa", "actions" or "gateway" process on a free port, sharing redis, the core and
        the rest (several replicas on one machine); `env` is its own environment on top, e.g.
        {"RASA_URL": stack.urls["rasa-2"]}. Returns its name (also its key in `urls`): start it with
        start_one; drop_replica stops and forgets it."""
        base = self.services[of]
        name = f"{of}-{2 + sum(n.startswith(of + '-') for n in self.services)}"
        port = free_port(frozenset(vars(self.ports).values()) | {urlsplit(u).port for u in self.urls.values()})
        flag = base.argv.index("-p" if of == "rasa" else "--port")
        self.urls[name] = f"http://127.0.0.1:{port}"
        rasa = of == "rasa"
        health = None if rasa else self.urls[name] + urlsplit(base.health_url).path
        self.services[name] = Service(name, base.argv[:flag + 1] + [str(port)] + base.argv[flag + 2:],
                                      health, base.timeout_s,
                                      check=(lambda: self._rasa_ok(name)) if rasa else None,
                                      env={**base.env, **(env or {})})
        return name

    def add_bot_process(self) -> tuple[str, str]:
        """One more Rasa with its own action server (a pair per core: Rasa waits on its actions
        within a turn), sharing redis's tracker and lock stores; every gateway routes each
        conversation to one of them (RASA_URL lists them all). Call before start."""
        actions = self.add_replica("actions")
        rasa = self.add_replica("rasa", env={"ACTION_ENDPOINT_URL": self.urls[actions] + "/webhook"})
        gateway = self.services.pop("gateway")
        self.services["gateway"] = gateway  # keep the gateway last
        self.env_overrides["RASA_URL"] = ",".join(u for n, u in self.urls.items() if n == "rasa" or n.startswith("rasa-"))
        return actions, rasa

    def drop_replica(self, name: str) -> None:
        self.stop_one(name)
        del self.services[name], self.urls[name]

    def remove_media_nodes(self) -> None:
        """Stops and drops every media node; restart the gateway afterwards to host media itself again."""
        for name in [n for n in self.services if n.startswith("media-")]:
            self.stop_one(name)
            del self.services[name]
        self.env_overrides.pop("VIDEO_MEDIA_NODES", None)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
            "REDIS_URL": self.urls["redis"], "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.ports.redis),
            "REDIS_DB": "0", "REDIS_PASSWORD": env.get("REDIS_PASSWORD", ""),
            "RASA_URL": self.urls["rasa"], "RASA_TOKEN": self.rasa_token,
            "RASA_GATEWAY_TOKEN": self.rasa_gateway_token, "ACTION_SERVER_TOKEN": self.action_server_token,
            "IDENTITY_ASSERTION_KEY": self.identity_assertion_key,
            "ACTION_SERVER_URL": self.urls["actions"], "ACTION_ENDPOINT_URL": self.urls["actions"] + "/webhook",
            "CORE_URL": self.urls["core"], "CORE_API_TOKEN": self.core_token, "CORE_AUDIT_KEY": self.audit_key,
            "CORE_REVIEWER_TOKEN": self.reviewer_token,
            "ANJU_ENV": self.env_name,
            "SPEECH_URL": self.urls["speech"], "SPEECH_SECRET": self.kept_secret("speech.secret"),
            "RASA_TRACKER_TTL_S": env.get("RASA_TRACKER_TTL_S", str(90 * 24 * 3600)),
            "CORE_DATABASE_URL": env.get("CORE_DATABASE_URL", f"sqlite:///{self.data_dir / 'core.db'}"),
        })
        env.update(self.env_overrides)
        return env

    # -- health checks ---------------------------------------------------------------
    @staticmethod
    def _redis_ok(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @staticmethod
    def _tcp_ok(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def _rasa_ok(self, name: str = "rasa") -> bool:
        """Ready only once the model is loaded (/status names the model file)."""
        try:
            with urllib.request.urlopen(f"{self.urls[name]}/status?token={self.rasa_token}", timeout=2) as r:
                return r.status == 200 and b"model_file" in r.read()
        except (urllib.error.URLError, OSError):
            return False

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def healthy(self, name: str) -> bool:
        svc = self.services[name]
        return svc.check() if svc.check else self._http_ok(svc.health_url)

    # -- lifecycle -------------------------------------------------------------------
    def start(self, names: Optional[list[str]] = None, progress: Callable[[str], None] = lambda m: None) -> None:
        """Launches in waves rather than one by one: redis first (Rasa's stores need it at start),
        then every other service at once; the gateway as soon as the core and the media nodes
        answer, so that it serves FAQ answers from the knowledge base while Rasa still loads
        its model (~55 s here). Returns when every service is healthy."""
        names = names or list(self.services)
        gateway = [n for n in names if n == "gateway"]
        first = [n for n in names if n.startswith("redis")]
        rest = [n for n in names if n not in first + gateway]
        for name in first:
            self.start_one(name, progress)
        for name in rest:
            self.launch(name)
        for name in rest:
            if name == "core" or name.startswith("media-"):
                self.wait_healthy(name, progress)
        for name in gateway:
            self.start_one(name, progress)
        for name in rest:
            self.wait_healthy(name, progress)

    def start_one(self, name: str, progress: Callable[[str], None] = lambda m: None) -> None:
        self.launch(name)
        self.wait_healthy(name, progress)

    def launch(self, name: str) -> None:
        svc = self.services[name]
        svc.log_path = self.data_dir / "log" / f"{name}.log"
        log = open(svc.log_path, "ab")
        svc.process = subprocess.Popen(svc.argv, cwd=ROOT, env={**self.environment(), **svc.env}, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        svc.launched_at = time.monotonic()
        svc.ready = False
        log.close()

    def wait_healthy(self, name: str, progress: Callable[[str], None] = lambda m: None) -> None:
        svc = self.services[name]
        if svc.ready:
            return
        last_note = time.monotonic()
        while not self.healthy(name):
            if svc.process.poll() is not None:
                raise StackError(f"{name} exited with code {svc.process.returncode}; "
                                 f"last log lines:\n{self.tail(name)}")
            now = time.monotonic()
            if now - svc.launched_at > svc.timeout_s:
                raise StackError(f"{name} not healthy after {svc.timeout_s:.0f}s; last log lines:\n{self.tail(name)}")
            if now - last_note >= 10:
                progress(f"   … waiting for {name} ({now - svc.launched_at:.0f}s)")
                last_note = now
            time.sleep(0.25)
        progress(f"   {name} ready in {time.monotonic() - svc.launched_at:.1f}s")
        if name == "rasa" or name.startswith("rasa-"):
            self._warm_up(self.urls[name])
        svc.ready = True

    def _warm_up(self, url: str) -> None:
        """The first parse after loading is slow; pay it here, not in a citizen's first turn."""
        req = urllib.request.Request(f"{url}/model/parse?token={self.rasa_token}",
                                     data=b'{"text": "\\u4f60\\u597d"}', headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=30).read()
        except (urllib.error.URLError, OSError) as exc:
            logger.warning("stack.rasa.warmup_failed error=%s", exc)

    def stop_one(self, name: str, timeout_s: float = 15) -> None:
        proc = self.services[name].process
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def kill_one(self, name: str) -> None:
        """SIGKILL, as a crash would: for restart tests."""
        proc = self.services[name].process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def restart(self, name: str, progress: Callable[[str], None] = lambda m: None) -> None:
        self.stop_one(name)
        self.start_one(name, progress)

    def stop(self) -> None:
        for name in reversed(list(self.services)):
            try:
                self.stop_one(name)
            except (ProcessLookupError, subprocess.TimeoutExpired) as exc:
                logger.warning("stack.stop.failed service=%s error=%s", name, exc)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.services[name].log_path
        if not path or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def dead(self) -> list[str]:
        return [n for n, s in self.services.items() if s.process is not None and s.process.poll() is not None]


BOT_PROCESS_MIB = 2000  # one Rasa (~1.7 GiB with its encoders) and its action server, measured


def default_bot_processes() -> int:
    """One Rasa + action server pair per core, as many as memory holds (leaving 2 GiB for the rest)."""
    try:
        available_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 1
    by_memory = (available_kib // 1024 - 2048) // BOT_PROCESS_MIB
    return max(1, min(os.cpu_count() or 1, by_memory))


def stack_from_env(data_dir: Path, ports: Ports) -> Stack:
    try:
        return Stack(data_dir=data_dir, ports=ports, model_path=Path(os.environ["ANJU_MODEL_PATH"]),
                     app_venv=Path(os.environ["ANJU_APP_VENV"]), rasa_venv=Path(os.environ["ANJU_RASA_VENV"]))
    except KeyError as exc:
        raise StackError(f"{exc.args[0]} is not set: start the stack through scripts/run.sh") from exc


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the whole Anju service in the foreground.")
    parser.add_argument("--data-dir", default=str(ROOT / "var"))
    args = parser.parse_args()
    say = lambda m: print(m, flush=True)  # noqa: E731 - the CLI's progress lines go to the terminal
    ports = Ports(redis=int(os.environ.get("ANJU_REDIS_PORT", 6390)),
                  bot_redis=int(os.environ.get("ANJU_BOT_REDIS_PORT", 6391)))
    stack = stack_from_env(Path(args.data_dir), ports)
    stack.env_name = os.environ.get("ANJU_ENV", "development")
    stack.bot_processes = int(os.environ.get("ANJU_BOT_PROCESSES") or default_bot_processes())
    for _ in range(stack.bot_processes - 1):
        stack.add_bot_process()
    if int(os.environ.get("ANJU_MEDIA_NODES", "0")):  # e.g. one media node per core
        stack.add_media_nodes(int(os.environ["ANJU_MEDIA_NODES"]))
    def on_signal(signum, frame):  # SIGTERM stops as cleanly as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        say("==> Starting services (redis, core, action server, rasa, speech server, gateway)")
        stack.start(progress=say)
        say("\nAnju is running:")
        say(f"  web widget       {stack.urls['gateway']}/")
        say(f"  chat API         POST {stack.urls['gateway']}/api/chat   (WebSocket /ws/chat)")
        say(f"  readiness        {stack.urls['gateway']}/readyz")
        say(f"  sandbox core     {stack.urls['core']}/docs")
        say(f"  rasa (localhost) {stack.env_overrides.get('RASA_URL', stack.urls['rasa'])}   "
            f"redis {stack.urls['redis']}")
        say(f"  speech (vosk-server protocol, localhost) {stack.urls['speech']}/?secret=<var/secrets/speech.secret>")
        say(f"  logs             {stack.data_dir / 'log'}/")
        say("Press Ctrl-C to stop.")
        import log_retention
        from supervisor import Supervisor  # imports this module: not at the top
        supervisor = Supervisor(stack, say)
        keep_days, rotated_on = log_retention.retention_days(), None
        while True:
            supervisor.tick()
            if rotated_on != dt.date.today():   # once a day (and at start): archive logs, drop old archives
                rotated_on = dt.date.today()
                done = log_retention.rotate(stack.data_dir / "log", rotated_on, keep_days)
                if done.deleted:
                    say(f"==> log archives past {keep_days} days deleted: {len(done.deleted)}")
            time.sleep(1)
    except KeyboardInterrupt:
        say("\n==> Stopping every process…")
        return 0
    except StackError as exc:
        say(f"\nERROR: {exc}")
        return 1
    finally:
        stack.stop()
        say("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
