"""Transaction turns through the gateway on the real stack.

Verifies N demo persons one after another (ID, name, one-time code from the sandbox
outbox), then has them all ask for their own data concurrently (balance, withdrawal
pre-check, application progress) and prints p50/p95/p99 of those transaction turns,
next to plain FAQ turns for comparison. Output saved to bench/results/transaction_turns.txt.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from chat_load import percentile  # noqa: E402
sys.path.insert(0, str(ROOT / "scripts"))
from stack import Ports, stack_from_env  # noqa: E402

from citizen import LIFTED_LIMITS, BenchCitizen  # noqa: E402

TRANSACTIONS = ["查一下我的余额", "我现在能提取公积金吗", "我的申请办到哪一步了"]
ROW = re.compile(r"^\| \d+ \| (\S+) \| (\d{17}[\dX]) \|")


def demo_persons(limit: int) -> list[tuple[str, str]]:
    rows = [ROW.match(line) for line in (ROOT / "fund" / "DEMO_PERSONS.md").read_text(encoding="utf-8").splitlines()]
    return [(m.group(2), m.group(1)) for m in rows if m][:limit]


async def verify(client: httpx.AsyncClient, core: httpx.AsyncClient, citizen: BenchCitizen, id_number: str,
                 name: str) -> bool:
    for text in ("查余额", id_number, name):
        await citizen.say(client, text)
    code = (await core.get("/dev/outbox", params={"limit": 1})).json()["messages"][0]["code"]
    reply = (await citizen.say(client, code)).json()
    return any("身份验证成功" in (m.get("text") or "") for m in reply.get("messages", []))


async def turns(client: httpx.AsyncClient, citizen: BenchCitizen, texts: list[str], rounds: int,
                latencies: list[float], errors: list[str]) -> None:
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            resp = await citizen.say(client, text)
            if resp.status_code != 200 or not resp.json().get("messages"):
                errors.append(str(resp.status_code))
                continue
            latencies.append((time.perf_counter() - started) * 1000)


async def run(stack, users: int, rounds: int, report) -> None:
    core = httpx.AsyncClient(base_url=stack.urls["core"], timeout=30,
                             headers={"Authorization": f"Bearer {stack.core_token}"})
    async with httpx.AsyncClient(base_url=stack.urls["gateway"], timeout=60) as client, core:
        persons = demo_persons(users)
        senders = []
        for id_number, name in persons:
            citizen = BenchCitizen()
            if await verify(client, core, citizen, id_number, name):
                senders.append(citizen)
        report(f"verified {len(senders)} of {len(persons)} demo persons")
        for label, texts in (("transaction", TRANSACTIONS), ("faq", ["公积金贷款利率是多少", "租房怎么提取"])):
            latencies: list[float] = []
            errors: list[str] = []
            started = time.perf_counter()
            await asyncio.gather(*(turns(client, s, texts, rounds, latencies, errors) for s in senders))
            elapsed = time.perf_counter() - started
            report(f"{label:<12} users={len(senders):>3} turns={len(latencies):>4} errors={len(errors):>3} "
                   f"turns/s={len(latencies) / elapsed:6.1f}  p50={percentile(latencies, 50):6.0f} ms  "
                   f"p95={percentile(latencies, 95):6.0f} ms  p99={percentile(latencies, 99):6.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "transaction_turns.txt"))
    args = parser.parse_args()
    lines: list[str] = []

    def report(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update(LIFTED_LIMITS)
        try:
            stack.start()
            report(f"transaction_turns  {time.strftime('%Y-%m-%d %H:%M')}  (rate limits lifted: {LIFTED_LIMITS})")
            asyncio.run(run(stack, args.users, args.rounds, report))
        finally:
            stack.stop()
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
