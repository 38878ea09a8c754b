"""Idle WebSocket chat sessions one gateway process holds, with no lost message.

Starts its own stack on free ports (model already trained), then opens /ws/chat sockets in steps
(default 1k, 5k, 10k, 19.4k in all) from several client processes, each bound to its own loopback
source address (127.0.0.2, 127.0.0.3, ...) so no address runs out of ephemeral ports. Every socket
is a new session, offers permessage-deflate as browsers do, and sends the keepalive frame
{"type": "ping"} often enough to outlive the idle timeout (the gateway answers {"type": "pong"}).
After each step the gateway's RSS (its process group) is read: KB per socket = delta RSS / sockets.

All sockets are then held past at least one idle-timeout period while they ping; a few "canary"
sockets that never ping must be closed by the gateway (code 1000, "idle"), which shows the
timeout is live and that it is the pings that keep the others open. Finally one chat message is
sent on a sample of sockets spread over all of them, and each must get its bot reply.

Every process here has a hard descriptor limit of 20,000 (no CAP_SYS_RESOURCE to raise it), so the
gateway holds at most that less its reserve (gateway/__main__.py: 19,488); the last step stays just
below it, and --overflow sockets past it must be refused (503) while the open ones keep working.

Benches lift the gateway's rate limits (one machine's loopback is few client IPs for every user)
and shorten the idle timeout so the run takes minutes; both are printed. Output is also saved to
bench/results/idle_sockets.txt.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

PING = json.dumps({"type": "ping"})
QUESTION = "公积金贷款利率是多少"
FD_LIMIT = 1 << 17
WARM_UP = 40
# Handshakes and pings in flight per client process: with 4 clients and the chat sample (8 each) this
# stays under the 100 connections of the gateway's redis pool (redis-py 8 raises MaxConnectionsError
# past them instead of waiting: a socket then gets "服务暂时繁忙" for that frame).
IN_FLIGHT = 12


# -- client worker (a separate process) ---------------------------------------------------

class Worker:
    def __init__(self, url: str, source: str, deflate: bool, ping_every: float):
        self.url, self.source, self.deflate, self.ping_every = url, source, deflate, ping_every
        self.conns: list = []       # (connection, lock) that ping
        self.canaries: list = []    # connections that never send anything
        self.ping_failures = 0
        self.ping_rounds = 0
        self.ping_replies: Counter = Counter()
        self.round_s = 0.0

    async def open_one(self, canary: bool, errors: Counter) -> None:
        from websockets.asyncio.client import connect
        try:
            conn = await connect(self.url, compression="deflate" if self.deflate else None, ping_interval=None,
                                 open_timeout=120, close_timeout=5, proxy=None, local_addr=(self.source, 0))
            first = json.loads(await asyncio.wait_for(conn.recv(), 60))
            if first.get("type") != "session" or not first.get("new"):
                errors[f"first frame {first}"[:80]] += 1
                await conn.close()
                return
        except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
            errors[type(exc).__name__ + ": " + str(exc)[:60]] += 1
            return
        (self.canaries if canary else self.conns).append((conn, asyncio.Lock()))

    async def open(self, n: int, canary: bool = False, concurrency: int = IN_FLIGHT) -> dict:
        errors: Counter = Counter()
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                await self.open_one(canary, errors)

        before = len(self.conns) + len(self.canaries)
        await asyncio.gather(*(one() for _ in range(n)))
        return {"opened": len(self.conns) + len(self.canaries) - before, "failed": sum(errors.values()),
                "errors": dict(errors.most_common(5))}

    async def ping_forever(self) -> None:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def ping(conn, lock) -> None:
            async with gate, lock:
                if conn.state.name != "OPEN":
                    return
                try:
                    await conn.send(PING)
                    reply = json.loads(await asyncio.wait_for(conn.recv(), 30))
                    self.ping_replies["pong" if reply == {"type": "pong"} else str(reply)[:70]] += 1
                except Exception:  # noqa: BLE001 - a failed ping shows as a failure and, later, a closed socket
                    self.ping_failures += 1

        while True:
            started = time.monotonic()
            await asyncio.gather(*(ping(c, lk) for c, lk in list(self.conns)))
            self.ping_rounds += 1
            self.round_s = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.ping_every - self.round_s))

    def status(self) -> dict:
        closed = Counter(f"{c.close_code} {c.close_reason or ''}".strip() for c, _ in self.conns
                         if c.state.name != "OPEN")
        canaries = Counter("open" if c.state.name == "OPEN" else f"{c.close_code} {c.close_reason or ''}".strip()
                           for c, _ in self.canaries)
        return {"open": sum(c.state.name == "OPEN" for c, _ in self.conns), "closed": dict(closed),
                "canaries": dict(canaries), "ping_rounds": self.ping_rounds, "ping_failures": self.ping_failures,
                "ping_replies": dict(self.ping_replies), "last_round_s": round(self.round_s, 1)}

    async def sample(self, k: int) -> dict:
        """One chat message on k sockets spread over this worker's; each must get its bot reply."""
        if k <= 0 or not self.conns:
            return {"sent": 0, "answered": 0, "lost": 0, "errors": {}, "latency_ms": []}
        step = max(1, len(self.conns) // k)
        chosen = self.conns[::step][:k]
        errors: Counter = Counter()
        latencies: list[float] = []
        gate = asyncio.Semaphore(8)

        async def ask(conn, lock) -> None:
            async with gate, lock:
                started = time.monotonic()
                try:
                    await conn.send(json.dumps({"text": QUESTION}))
                    while True:  # frames of other kinds (none expected) are skipped, not counted
                        frame = json.loads(await asyncio.wait_for(conn.recv(), 120))
                        if "messages" in frame or "error" in frame:
                            break
                    if frame.get("messages"):
                        latencies.append((time.monotonic() - started) * 1000)
                    else:
                        errors[str(frame)[:80]] += 1
                except Exception as exc:  # noqa: BLE001
                    errors[type(exc).__name__] += 1

        await asyncio.gather(*(ask(c, lk) for c, lk in chosen))
        return {"sent": len(chosen), "answered": len(latencies), "lost": len(chosen) - len(latencies),
                "errors": dict(errors), "latency_ms": latencies}

    async def serve(self) -> None:
        pinger = None
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "open":
                out = await self.open(cmd["n"], cmd.get("canary", False))
            elif op == "ping":
                pinger = pinger or asyncio.create_task(self.ping_forever())
                out = {"pinging": True}
            elif op == "status":
                out = self.status()
            elif op == "sample":
                out = await self.sample(cmd["k"])
            elif op == "close":
                if pinger:
                    pinger.cancel()
                await asyncio.gather(*(c.close() for c, _ in self.conns + self.canaries), return_exceptions=True)
                out = {"closed": True}
            else:
                out = {"error": f"unknown op {op}"}
            print(json.dumps(out), flush=True)
            if op == "close":
                return


def run_worker(url: str, source: str, deflate: bool, ping_every: float) -> int:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(Worker(url, source, deflate, ping_every).serve())
    return 0


# -- controller -------------------------------------------------------------------------

class Clients:
    """The client processes, driven over their stdin/stdout one JSON line at a time."""

    def __init__(self, url: str, count: int, deflate: bool, ping_every: float):
        self.procs = [subprocess.Popen([sys.executable, __file__, "--worker", url, f"127.0.0.{2 + i}",
                                        "--ping-every", str(ping_every)] + ([] if deflate else ["--no-deflate"]),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                      for i in range(count)]

    def ask(self, commands: list[dict]) -> list[dict]:
        for proc, cmd in zip(self.procs, commands):
            proc.stdin.write(json.dumps(cmd) + "\n")
            proc.stdin.flush()
        return [json.loads(proc.stdout.readline()) for proc, _ in zip(self.procs, commands)]

    def all(self, cmd: dict) -> list[dict]:
        return self.ask([cmd] * len(self.procs))

    def split(self, op: str, key: str, total: int, **extra) -> list[dict]:
        n = len(self.procs)
        return self.ask([{"op": op, key: total // n + (1 if i < total % n else 0), **extra} for i in range(n)])

    def stop(self) -> None:
        for proc in self.procs:
            try:
                proc.stdin.write(json.dumps({"op": "close"}) + "\n")
                proc.stdin.flush()
                proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                proc.kill()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> int:
    """The gateway inherits this limit: it needs one descriptor per socket, the clients another."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(FD_LIMIT, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=[1000, 5000, 10000, 19400],
                        help="sockets open in all after each step")
    parser.add_argument("--overflow", type=int, default=300,
                        help="sockets tried after the last step: those past the gateway's limit must be refused")
    parser.add_argument("--clients", type=int, default=4, help="client processes (one loopback address each)")
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="WS_IDLE_TIMEOUT_S for the bench")
    parser.add_argument("--ping-every", type=float, default=20.0, help="seconds between keepalives per socket")
    parser.add_argument("--sample", type=int, default=200, help="sockets that each send one chat message")
    parser.add_argument("--canaries", type=int, default=20, help="sockets that never ping: must be closed idle")
    parser.add_argument("--no-deflate", action="store_true", help="clients do not offer permessage-deflate")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra gateway environment for a variant, e.g. WS_PER_MESSAGE_DEFLATE=true")
    parser.add_argument("--idle-only", action="store_true",
                        help="start only redis, the core and the gateway, and send no chat message (quick variants)")
    parser.add_argument("--label", default="", help="names the variant in the output")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "idle_sockets.txt"))
    parser.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    parser.add_argument("--worker", nargs=2, metavar=("URL", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.worker[0], args.worker[1], not args.no_deflate, args.ping_every)
    if args.ping_every >= args.idle_timeout:
        parser.error("--ping-every must be shorter than --idle-timeout")

    from chat_load import rss_mib
    from citizen import LIFTED_LIMITS
    from stack import Ports, Stack, stack_from_env

    lines: list[str] = []

    def report(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    fd_limit = raise_fd_limit()
    lifted = {**LIFTED_LIMITS, "RATE_SESSION_NEW_IP": "10000000/60", "RATE_CHAT_IP": "10000000/60"}
    overrides = {**lifted, "WS_IDLE_TIMEOUT_S": str(args.idle_timeout)}
    variant = dict(item.split("=", 1) for item in args.env)
    overrides.update(variant)
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        stack: Stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update(overrides)
        clients = None
        try:
            stack.start(["redis", "core", "gateway"] if args.idle_only else None)
            gw = stack.services["gateway"].process.pid
            url = stack.urls["gateway"].replace("http://", "ws://") + "/ws/chat"
            clients = Clients(url, args.clients, not args.no_deflate, args.ping_every)
            report(f"idle_sockets {args.label}  {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores, "
                   f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB")
            report(f"gateway env for the bench: {overrides}  (rate limits lifted; idle timeout shortened)")
            from gateway.settings import Settings
            ws = {name: overrides.get(name.upper(), Settings.model_fields[name].default)
                  for name in ("ws_protocol", "ws_per_message_deflate", "ws_ping_interval_s", "ws_idle_timeout_s")}
            report(f"gateway WebSocket server: {ws} (ws_protocol auto = the gateway's lean uvicorn websockets-sansio)")
            report(f"file descriptor limit (gateway inherits it): {fd_limit}; {args.clients} client processes on "
                   f"127.0.0.2-{1 + args.clients}; clients offer permessage-deflate: {not args.no_deflate}; "
                   f"keepalive {PING} every {args.ping_every:.0f} s")
            # Warm up (first-connection imports and pools), then the baseline.
            warm = sum(o["opened"] for o in clients.split("open", "n", WARM_UP))
            time.sleep(2)
            base = rss_mib(gw)
            report(f"gateway RSS after {warm} warm-up sockets (counted in the levels): {base:.0f} MiB")
            report("")
            report(f"{'sockets':>8} {'opened':>7} {'failed':>6} {'open s':>7} {'gw fds':>7} {'RSS MiB':>8} "
                   f"{'step KB/sock':>12} {'all KB/sock':>11}")
            clients.ask([{"op": "open", "n": args.canaries, "canary": True}] + [{"op": "status"}] * (args.clients - 1))
            clients.all({"op": "ping"})
            held, prev_rss, failed_total = warm, base, 0
            for level in args.levels:
                started = time.perf_counter()
                outs = clients.split("open", "n", level - held)
                took = time.perf_counter() - started
                opened = sum(o["opened"] for o in outs)
                failed = sum(o["failed"] for o in outs)
                failed_total += failed
                errors = Counter()
                for o in outs:
                    errors.update(o["errors"])
                time.sleep(3)
                rss = rss_mib(gw)
                step = (rss - prev_rss) * 1024 / opened if opened else float("nan")
                held += opened
                total = (rss - base) * 1024 / (held - warm + args.canaries)
                fds = len(os.listdir(f"/proc/{gw}/fd"))
                report(f"{level:>8} {opened:>7} {failed:>6} {took:>7.1f} {fds:>7} {rss:>8.0f} {step:>12.1f} "
                       f"{total:>11.1f}")
                if errors:
                    report(f"         errors: {dict(errors)}")
                prev_rss = rss
            if args.overflow:
                outs = clients.split("open", "n", args.overflow)
                opened = sum(o["opened"] for o in outs)
                errors = Counter()
                for o in outs:
                    errors.update(o["errors"])
                held += opened
                report(f"then {args.overflow} more, past the gateway's connection limit (descriptor limit less "
                       f"its reserve): {opened} opened, {sum(errors.values())} refused {dict(errors)}")
            hold = args.idle_timeout * 1.25 + args.ping_every
            report("")
            report(f"holding {held} sockets {hold:.0f} s (idle timeout {args.idle_timeout:.0f} s) while they ping ...")
            cpu0, t0 = cpu_s(gw), time.monotonic()
            time.sleep(hold)
            cpu_pct = (cpu_s(gw) - cpu0) / (time.monotonic() - t0) * 100
            statuses = clients.all({"op": "status"})
            still_open = sum(s["open"] for s in statuses)
            closed = Counter()
            canaries = Counter()
            replies = Counter()
            for s in statuses:
                closed.update(s["closed"])
                canaries.update(s["canaries"])
                replies.update(s["ping_replies"])
            rss_held = rss_mib(gw)
            report(f"after the hold: {still_open} of {held} still open; closed: {dict(closed) or 0}; "
                   f"ping failures: {sum(s['ping_failures'] for s in statuses)}; "
                   f"ping rounds per client: {[s['ping_rounds'] for s in statuses]} "
                   f"(last round took {max(s['last_round_s'] for s in statuses)} s); replies: {dict(replies)}")
            report(f"canaries (never ping): {dict(canaries)}  (expected: all closed 1000 idle)")
            report(f"gateway CPU while holding them: {cpu_pct:.0f}% of one core; RSS {rss_held:.0f} MiB, "
                   f"{(rss_held - base) * 1024 / (held - warm):.1f} KB per socket held (above the warm-up baseline)")
            started = time.perf_counter()
            samples = clients.split("sample", "k", 0 if args.idle_only else args.sample)
            took = time.perf_counter() - started
            sent = sum(s["sent"] for s in samples)
            answered = sum(s["answered"] for s in samples)
            errors = Counter()
            latencies: list[float] = []
            for s in samples:
                errors.update(s["errors"])
                latencies += s["latency_ms"]
            latencies.sort()
            p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
            report(f"chat message on {sent} sockets spread over all: {answered} answered, {sent - answered} lost "
                   f"{dict(errors) or ''} in {took:.0f} s (p95 {p95:.0f} ms, 8 in flight per client)")
            final = clients.all({"op": "status"})
            alive = stack.services["gateway"].process.poll() is None
            report(f"at the end: {sum(s['open'] for s in final)} open, connect failures {failed_total}, "
                   f"gateway RSS {rss_mib(gw):.0f} MiB, gateway alive: {alive}")
            problems = Counter(line.split(" ", 3)[-1][:160] for line in stack.tail("gateway", 100000).splitlines()
                               if "ERROR" in line or "Error" in line or "WARNING" in line)
            for line, count in problems.most_common(8):
                report(f"gateway log: {count} x {line}")
        finally:
            if clients:
                clients.stop()
            stack.stop()
    out = Path(args.out)
    text = "\n".join(lines) + "\n"
    if args.append and out.exists():
        text = out.read_text(encoding="utf-8") + "\n" + text
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
