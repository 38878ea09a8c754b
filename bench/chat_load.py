"""Chat load over the gateway: N concurrent simulated citizens against the real stack.

Starts its own stack on free ports (model already trained), measures cold start to the
first answered chat, then for each concurrency level runs every user through a short
conversation and prints p50/p95/p99 turn latency, throughput, errors and each process's
RSS. Output is also saved to bench/results/chat_load.txt.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from stack import Ports, Stack, stack_from_env  # noqa: E402

from citizen import LIFTED_LIMITS, BenchCitizen  # noqa: E402

CONVERSATION = ["你好", "租房可以提取公积金吗", "常州呢", "公积金贷款利率是多少", "缴存比例是多少",
                "今天天气怎么样", "谢谢"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def rss_mib(pid: int) -> float:
    """RSS of a process and every process in its group (rasa and uvicorn may fork)."""
    total_kib = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pgid = int(stat.rsplit(")", 1)[1].split()[2])
            if pgid == pid:
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total_kib / 1024


async def user(client: httpx.AsyncClient, name: str, turns: int, latencies: list[float], errors: list[str]) -> None:
    citizen = BenchCitizen()
    await citizen.say(client, "你好")  # the session is issued outside the timed turns
    for i in range(turns):
        text = CONVERSATION[i % len(CONVERSATION)]
        started = time.perf_counter()
        try:
            resp = await citizen.say(client, text)
            if resp.status_code != 200 or not resp.json().get("messages"):
                errors.append(f"{resp.status_code}")
                continue
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
            continue
        latencies.append((time.perf_counter() - started) * 1000)


async def run_level(base_url: str, users: int, turns: int, tag: str) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(user(client, f"bench-{tag}-{users}-{u}", turns, latencies, errors)
                               for u in range(users)))
        elapsed = time.perf_counter() - started
    return {"users": users, "turns": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
            "elapsed_s": elapsed, "throughput": len(latencies) / elapsed,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
            "mean": statistics.fmean(latencies)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--turns", type=int, default=7, help="turns per user at each level")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chat_load.txt"))
    args = parser.parse_args()
    lines: list[str] = []

    def report(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        stack: Stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update(LIFTED_LIMITS)
        try:
            t0 = time.perf_counter()
            stack.start()
            first = httpx.post(stack.urls["gateway"] + "/api/chat", json={"text": "你好"}, timeout=60)
            cold = time.perf_counter() - t0
            assert first.status_code == 200, first.text
            report(f"chat_load  {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores")
            report(f"cold start (spawn all processes -> first answered chat): {cold:.1f} s")
            report(f"rate limits lifted for the bench: {LIFTED_LIMITS}")
            report("")
            report(f"{'users':>5} {'turns':>6} {'errors':>6} {'turns/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
            results = []
            for level in args.users:
                r = asyncio.run(run_level(stack.urls["gateway"], level, args.turns, "run"))
                results.append(r)
                report(f"{r['users']:>5} {r['turns']:>6} {r['errors']:>6} {r['throughput']:>8.1f} "
                       f"{r['p50']:>8.0f} {r['p95']:>8.0f} {r['p99']:>8.0f}")
            if len(results) >= 2:
                a, b = results[0], results[-1]
                report(f"p95 ratio {b['users']} vs {a['users']} users: {b['p95'] / a['p95']:.2f}x; "
                       f"throughput ratio: {b['throughput'] / a['throughput']:.2f}x")
            report("")
            report("RSS after the run (MiB, process group):")
            for name, svc in stack.services.items():
                report(f"  {name:<8} {rss_mib(svc.process.pid):8.0f}")
        finally:
            stack.stop()
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
