"""WeChat message push under load: how fast /wechat/callback answers "success" while Rasa works, and how
many bot replies per second reach WeChat's customer-service API.

Starts its own stack on free ports (redis, core, action server, Rasa with the trained model, gateway; no
speech server) with the gateway pointed at the local WeChat API simulator of tests/wechat_simulator.py
(a real HTTP server, safe mode AES + XML as a centre would configure it; custom/send answers after
--send-delay-ms, like WeChat's own API across the internet). Then U simulated citizens each push M text messages as fast as
the callback answers, all at once; a share of the pushes is sent twice with the same MsgId, as
WeChat retries. Reported: callback latency (p50/p95/p99/max, all answers must be "success"), push rate,
replies delivered per second (first push to last delivery), push->reply latency, and the dedupe count.
Output is also saved to bench/results/wechat_callback.txt.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))
from stack import Ports, Stack, free_port, stack_from_env  # noqa: E402
from wechat_simulator import AES_KEY, SimulatorServer, WeChatSimulator, message_fields, push_body  # noqa: E402

from chat_load import percentile  # noqa: E402
from citizen import LIFTED_LIMITS  # noqa: E402

QUESTIONS = ["租房可以提取公积金吗", "公积金贷款利率是多少", "缴存比例是多少", "怎么查公积金余额",
             "退休了怎么提取公积金", "异地贷款需要什么材料"]
SERVICES = ["redis", "core", "actions", "rasa", "gateway"]


async def citizen(client: httpx.AsyncClient, openid: str, n: int, first_id: int, retry_share: float,
                  rng: random.Random, latencies: list[float], answers: list[str], pushed: dict[str, list[float]]) -> int:
    """Pushes n messages one after another (each as soon as the last was answered); returns retries sent."""
    retries = 0
    for i in range(n):
        fields = message_fields(openid, QUESTIONS[(first_id + i) % len(QUESTIONS)], msg_id=first_id + i)
        copies = 2 if rng.random() < retry_share else 1
        for copy in range(copies):
            query, body = push_body(fields, "xml", AES_KEY)
            started = time.monotonic()
            if copy == 0:
                pushed.setdefault(openid, []).append(started)
            resp = await client.post("/wechat/callback", params=query, content=body)
            latencies.append((time.monotonic() - started) * 1000)
            answers.append(resp.text if resp.status_code == 200 else f"http {resp.status_code}")
            retries += copy
    return retries


async def run(base_url: str, sim: WeChatSimulator, tag: str, users: int, per_user: int, retry_share: float,
              timeout_s: float) -> dict:
    rng = random.Random(7)
    first_id = {"warm": 1_000_000, "run": 2_000_000}[tag]   # MsgIds of different runs never meet
    latencies: list[float] = []
    answers: list[str] = []
    pushed: dict[str, list[float]] = {}
    sim.calls.clear()
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        t0 = time.monotonic()
        retries = sum(await asyncio.gather(*(
            citizen(client, f"o_bench_{tag}_{u:03d}", per_user, first_id + u * 1000, retry_share, rng, latencies,
                    answers, pushed) for u in range(users))))
        pushing_s = time.monotonic() - t0
    expected = users * per_user
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(delivered(sim)) < expected:
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)   # anything answered twice would show up now
    sends = delivered(sim)
    e2e = []
    for openid, times in pushed.items():
        arrived = sorted(c.at for c in sends if c.body["touser"] == openid)
        e2e.extend((a - p) * 1000 for p, a in zip(times, arrived))
    last = max((c.at for c in sends), default=t0)
    return {"users": users, "messages": expected, "retries": retries, "pushes": len(answers),
            "success": answers.count("success"), "other": sorted(set(a for a in answers if a != "success")),
            "pushing_s": pushing_s, "push_rate": len(answers) / pushing_s, "latencies": latencies,
            "delivered": len(sends), "deliver_s": last - t0, "e2e": e2e,
            "per_user": {o: sum(1 for c in sends if c.body["touser"] == o) for o in pushed}}


def delivered(sim: WeChatSimulator) -> list:
    return [c for c in list(sim.calls) if c.path.endswith("/custom/send") and c.params.get("_accepted")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=3, help="messages per user")
    parser.add_argument("--retry-share", type=float, default=0.2, help="share of pushes WeChat sends twice")
    parser.add_argument("--send-delay-ms", type=int, default=50, help="simulated custom/send round trip")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "wechat_callback.txt"))
    args = parser.parse_args()
    lines: list[str] = []

    def report(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    sim = WeChatSimulator(send_delay_s=args.send_delay_ms / 1000)
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp, SimulatorServer(sim, free_port()) as server:
        stack: Stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update(LIFTED_LIMITS)
        stack.env_overrides.update({"WECHAT_API_BASE": server.url, "WECHAT_AES_KEY": AES_KEY,
                                    "WECHAT_MSG_FORMAT": "xml"})
        try:
            stack.start(SERVICES)
            base = stack.urls["gateway"]
            warm = asyncio.run(run(base, sim, "warm", 1, 1, 0.0, 120))   # first turn loads Rasa's pipeline
            assert warm["delivered"] == 1, "the warm-up message was not answered"
            r = asyncio.run(run(base, sim, "run", args.users, args.messages, args.retry_share, 300))
            log = (stack.data_dir / "log" / "gateway.log").read_text(encoding="utf-8", errors="replace")
            rasa_timeouts = log.count("rasa.send.failed error=ReadTimeout")
            duplicates = log.count("wechat.callback.duplicate")
        finally:
            stack.stop()
    lat, e2e = r["latencies"], r["e2e"] or [0.0]
    report(f"wechat_callback  {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    report(f"setup: safe mode (AES) XML pushes; simulator custom/send round trip {args.send_delay_ms} ms; "
           f"rate limits lifted: {LIFTED_LIMITS}")
    report(f"load: {r['users']} citizens x {args.messages} messages, all at once, each pushed as soon as the "
           f"last was answered; {r['retries']} pushes repeated with the same MsgId (WeChat's retries)")
    report("")
    report(f"callback answers: {r['pushes']} pushes, {r['success']} \"success\"" +
           (f", other: {r['other']}" if r["other"] else ""))
    report(f"callback latency ms: p50 {percentile(lat, 50):.0f}  p95 {percentile(lat, 95):.0f}  "
           f"p99 {percentile(lat, 99):.0f}  max {max(lat):.0f}   (WeChat waits 5000)")
    report(f"pushes per second while pushing: {r['push_rate']:.1f} (all {r['pushes']} in {r['pushing_s']:.1f} s)")
    report(f"replies delivered: {r['delivered']} of {r['messages']} distinct messages "
           f"(dedupe: {r['retries']} repeated pushes -> {r['delivered'] - r['messages']} extra replies)")
    report(f"delivered replies per second: {r['delivered'] / r['deliver_s']:.2f} "
           f"({r['delivered']} in {r['deliver_s']:.1f} s from the first push to the last delivery)")
    report(f"push -> reply delivered ms: p50 {percentile(e2e, 50):.0f}  p95 {percentile(e2e, 95):.0f}  "
           f"max {max(e2e):.0f}")
    report(f"dedupe seen by the gateway (wechat.callback.duplicate): {duplicates}; turns where Rasa timed out "
           f"(RASA_TIMEOUT_S) and the gateway answered without it: {rasa_timeouts}")
    uneven = {o: n for o, n in r["per_user"].items() if n != args.messages}
    report(f"citizens answered other than once per message: {len(uneven)}" + (f" {uneven}" if uneven else ""))
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if r["success"] == r["pushes"] else 1


if __name__ == "__main__":
    sys.exit(main())
