"""Mixed chat load over the gateway against the real stack, at fixed arrival rates (issue 20).

Citizens arrive at random (Poisson) so that turns are offered at each target rate; each runs one
of five conversations, with 0.5-1.5 s between turns as a fast typist:
  faq_http   FAQ with follow-ups over POST /api/chat
  faq_ws     FAQ with follow-ups over WebSocket /ws/chat
  balance    verification (ID, name, SMS code from the sandbox outbox) + balance
  precheck   verification + withdrawal pre-check
  handoff    a question, then 转人工 (the ticket is cancelled afterwards, outside the timed turns)
Every reply is checked (an answer, 身份验证成功, a balance, a queued ticket); a wrong or missing
one counts as an error. Per level: p50/p95/p99 turn latency, offered and served turns/s, errors,
and each process's CPU (cores busy) and RSS. With --profile, py-spy samples every process for a
while at one rate and the top frames go to bench/results/profile_<process>.txt.

  bash scripts/bench.sh chat_load --rates 10 20 30 40 --bot-processes 2
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from stack import Ports, Stack, stack_from_env  # noqa: E402

from citizen import LIFTED_LIMITS, BenchCitizen  # noqa: E402

BENCH_ENV = {**LIFTED_LIMITS, "CORE_CODES_PER_WINDOW": "100000", "RATE_HANDOFF_SESSION": "100000/60",
             # staff hours always open, so that 转人工 queues a ticket at any hour the bench runs
             "HANDOFF_STAFF_HOURS": "00:00-24:00", "HANDOFF_STAFF_DAYS": "[1,2,3,4,5,6,7]",
             "HANDOFF_MAX_WAIT_S": "100000000"}
# The first question of an FAQ conversation is one of our own training examples at random (about
# 2,000 phrasings: Rasa's e5 cache gets no more exact repeats than varied citizens would give it);
# the follow-ups are the short ones citizens repeat.
FAQ_HTTP = ["需要带什么材料", "常州呢", "谢谢"]
FAQ_WS = ["利率是多少", "二套房呢", "好的"]
WEIGHTS = {"faq_http": 35, "faq_ws": 25, "balance": 15, "precheck": 15, "handoff": 10}
TURNS = {"faq_http": 4, "faq_ws": 4, "balance": 5, "precheck": 5, "handoff": 2}
EXAMPLE = re.compile(r"^\s+- (.+)$")
PROFILER = Path.home() / ".cache" / "anju" / "tools" / "py-spy" / "bin" / "py-spy"
ROW = re.compile(r"^\| \d+ \| (\S+) \| (\d{17}[\dX]) \|")
PHONE_SENT = re.compile(r"(1\d\d\*{4}\d{4})")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    pids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return pids


def rss_mib(pgid: int) -> float:
    """RSS of a process and every process in its group (rasa and uvicorn may fork)."""
    total_kib = 0
    for pid in group_pids(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def cpu_s(pgid: int) -> float:
    ticks = 0
    for pid in group_pids(pgid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, ValueError, IndexError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def demo_persons() -> list[tuple[str, str]]:
    rows = [ROW.match(line) for line in (ROOT / "fund" / "DEMO_PERSONS.md").read_text(encoding="utf-8").splitlines()]
    return [(m.group(2), m.group(1)) for m in rows if m]


def faq_questions() -> list[str]:
    """Every example under an `intent: faq/...` in nlu_data/ (plain YAML lists, read line by line)."""
    questions, in_faq = [], False
    for path in sorted((ROOT / "nlu_data").glob("*.yml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("- intent:"):
                in_faq = line.split(":", 1)[1].strip().startswith("faq/")
            elif in_faq and (m := EXAMPLE.match(line)) and "[" not in m.group(1):
                questions.append(m.group(1).strip())
    return questions


QUESTIONS = faq_questions()


def texts_of(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


@dataclass
class Level:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    starts: list[float] = field(default_factory=list)  # perf_counter() at which each answered turn was sent
    errors: Counter = field(default_factory=Counter)
    sessions: Counter = field(default_factory=Counter)

    def turn(self, scenario: str, ms: float) -> None:
        self.latencies[scenario].append(ms)
        self.starts.append(time.perf_counter() - ms / 1000)

    @property
    def all_latencies(self) -> list[float]:
        return [v for values in self.latencies.values() for v in values]


class Bench:
    def __init__(self, stack: Stack, persons: list[tuple[str, str]]):
        self.stack = stack
        self.gateway = stack.urls["gateway"]
        self.persons = persons
        self.locks = {p[0]: asyncio.Lock() for p in persons}
        self.next_person = 0
        self.http: Optional[httpx.AsyncClient] = None
        self.core: Optional[httpx.AsyncClient] = None

    async def __aenter__(self) -> "Bench":
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        self.http = httpx.AsyncClient(base_url=self.gateway, timeout=60, limits=limits)
        self.core = httpx.AsyncClient(base_url=self.stack.urls["core"], timeout=30,
                                      headers={"Authorization": f"Bearer {self.stack.core_token}"})
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()
        await self.core.aclose()

    async def timed(self, level: Level, scenario: str, citizen: BenchCitizen, text: str) -> list[dict]:
        started = time.perf_counter()
        resp = await citizen.say(self.http, text)
        ms = (time.perf_counter() - started) * 1000
        messages = resp.json().get("messages") if resp.status_code == 200 else None
        if not messages:
            raise RuntimeError(f"http {resp.status_code}")
        level.turn(scenario, ms)
        return messages

    async def verify(self, level: Level, scenario: str, citizen: BenchCitizen, person: tuple[str, str],
                     ask: str) -> list[dict]:
        """The first question asks for verification; ID, name and the code follow. Returns the answer."""
        id_number, name = person
        await self.timed(level, scenario, citizen, ask)
        await think()
        await self.timed(level, scenario, citizen, id_number)
        await think()
        sent = texts_of(await self.timed(level, scenario, citizen, name))
        phone = PHONE_SENT.search(sent)
        if not phone:
            raise RuntimeError("no code sent")
        outbox = (await self.core.get("/dev/outbox", params={"limit": 50})).json()["messages"]
        code = next(m["code"] for m in outbox if m["phone_masked"] == phone.group(1))
        await think()
        verified = await self.timed(level, scenario, citizen, code)
        if "身份验证成功" not in texts_of(verified):
            raise RuntimeError("not verified")
        return verified

    async def session(self, level: Level, scenario: str) -> None:
        level.sessions[scenario] += 1
        try:
            await getattr(self, scenario)(level)
        except Exception as exc:  # one failed conversation is counted, never stops the bench
            level.errors[f"{scenario}: {type(exc).__name__} {str(exc)[:60]}"] += 1

    async def faq_http(self, level: Level) -> None:
        citizen = BenchCitizen()
        for i, text in enumerate([random.choice(QUESTIONS)] + FAQ_HTTP):
            if i:
                await think()
            await self.timed(level, "faq_http", citizen, text)

    async def faq_ws(self, level: Level) -> None:
        url = self.gateway.replace("http://", "ws://") + "/ws/chat"
        async with websockets.connect(url, max_size=2 ** 20, open_timeout=30) as ws:
            first = json.loads(await ws.recv())
            if first.get("type") != "session":
                raise RuntimeError("no session frame")
            for i, text in enumerate([random.choice(QUESTIONS)] + FAQ_WS):
                if i:
                    await think()
                started = time.perf_counter()
                await ws.send(json.dumps({"text": text}, ensure_ascii=False))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if not reply.get("messages"):
                    raise RuntimeError(f"ws {str(reply)[:40]}")
                level.turn("faq_ws", (time.perf_counter() - started) * 1000)

    async def with_person(self, level: Level, scenario: str, ask: str, expect: str) -> None:
        person = self.persons[self.next_person % len(self.persons)]
        self.next_person += 1
        async with self.locks[person[0]]:  # one conversation per person at a time: codes go to one phone
            citizen = BenchCitizen()
            answer = await self.verify(level, scenario, citizen, person, ask)
            if expect not in texts_of(answer):  # the question is answered right after verification
                await think()
                answer = await self.timed(level, scenario, citizen, ask)
                if expect not in texts_of(answer):
                    raise RuntimeError(f"no {expect}")

    async def balance(self, level: Level) -> None:
        await self.with_person(level, "balance", "查一下我的公积金余额", "余额")

    async def precheck(self, level: Level) -> None:
        await self.with_person(level, "precheck", "我租房能提取多少公积金", "提取")

    async def handoff(self, level: Level) -> None:
        citizen = BenchCitizen()
        await self.timed(level, "handoff", citizen, "你们几点下班")
        await think()
        messages = await self.timed(level, "handoff", citizen, "转人工")
        tickets = [m["custom"] for m in messages if (m.get("custom") or {}).get("type") == "handoff_queued"]
        if not tickets:
            raise RuntimeError("no ticket")
        await self.http.post(f"/api/handoff/{tickets[0]['ticket_id']}/cancel", json={"key": tickets[0]["key"]},
                             headers={"Authorization": f"Bearer {citizen.token}"})

    async def run_level(self, rate: float, duration_s: float) -> tuple[Level, float, float]:
        """Sessions start at random for `duration_s` so that turns are offered at `rate` per second."""
        level = Level()
        mean_turns = sum(WEIGHTS[s] * TURNS[s] for s in WEIGHTS) / sum(WEIGHTS.values())
        session_rate = rate / mean_turns
        names, weights = list(WEIGHTS), list(WEIGHTS.values())
        tasks = []
        started = time.perf_counter()
        while time.perf_counter() - started < duration_s:
            tasks.append(asyncio.ensure_future(self.session(level, random.choices(names, weights)[0])))
            await asyncio.sleep(random.expovariate(session_rate))
        await asyncio.gather(*tasks)
        # turns/s while citizens kept arriving (the last conversations finish after that window)
        in_window = sum(1 for t in level.starts if started + 5 <= t < started + duration_s) / (duration_s - 5)
        return level, time.perf_counter() - started, in_window


async def think() -> None:
    await asyncio.sleep(random.uniform(0.5, 1.5))


# A sample whose innermost Python frame is the event loop's own run call is the loop waiting in
# epoll (uvloop is C, so py-spy sees no deeper Python frame): not work, left out of the shares.
LOOP_WAIT = ("serve (sanic/server/runners.py)", "Runner.run (asyncio/runners.py)", "run (asyncio/runners.py)")


def summarize_profile(raw: Path, top: int = 25) -> list[str]:
    """Collapsed stacks (py-spy --format raw) → the frames with the most samples, self and inclusive,
    as shares of the samples where the process worked (not waiting in its event loop)."""
    self_counts: Counter = Counter()
    incl_counts: Counter = Counter()
    total = waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        if frames[-1] in LOOP_WAIT:
            waiting += n
            continue
        total += n
        self_counts[frames[-1]] += n
        for frame in set(frames):
            incl_counts[frame] += n
    total = max(total, 1)
    lines = [f"samples at work: {total}; waiting in the event loop (left out): {waiting}", "",
             f"top {top} frames by own samples:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in self_counts.most_common(top)]
    lines += ["", f"top {top} frames by samples including callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in incl_counts.most_common(top)]
    return lines


def start_profilers(stack: Stack, seconds: int, out_dir: Path) -> list[tuple[str, subprocess.Popen, Path]]:
    jobs = []
    for name, svc in stack.services.items():
        if name.startswith("redis") or svc.process is None:
            continue
        raw = out_dir / f"{name}.raw"
        jobs.append((name, subprocess.Popen([str(PROFILER), "record", "--pid", str(svc.process.pid), "--rate", "50",
                                              "--duration", str(seconds), "--format", "raw", "--output", str(raw),
                                              "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), raw))
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 20, 30, 40], help="offered turns/s per level")
    parser.add_argument("--duration", type=float, default=40, help="seconds of arrivals per level")
    parser.add_argument("--bot-processes", type=int, default=2, help="Rasa + action server pairs")
    parser.add_argument("--profile", type=float, default=None, help="py-spy every process at this rate")
    parser.add_argument("--profile-s", type=int, default=25)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chat_load.txt"))
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    random.seed(args.seed)
    lines: list[str] = []

    def report(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update(BENCH_ENV)
        for _ in range(args.bot_processes - 1):
            stack.add_bot_process()
        try:
            t0 = time.perf_counter()
            stack.start()
            first = httpx.post(stack.urls["gateway"] + "/api/chat", json={"text": "你好"}, timeout=60)
            cold = time.perf_counter() - t0
            assert first.status_code == 200, first.text
            report(f"chat_load  {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores, "
                   f"load average before {os.getloadavg()[0]:.1f}; model {Path(stack.model_path).name}")
            report(f"processes: {', '.join(stack.services)} ({args.bot_processes} Rasa + action server pair(s)); "
                   f"cold start to the first answered chat {cold:.1f} s")
            report(f"limits lifted for the bench: {BENCH_ENV}")
            report(f"mix (sessions %): {WEIGHTS}; turns per session {TURNS}; 0.5-1.5 s between a citizen's turns; "
                   f"FAQ conversations open with one of {len(QUESTIONS)} of our training questions at random")
            asyncio.run(measure(stack, args, report))
        finally:
            stack.stop()
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


async def measure(stack: Stack, args, report) -> None:
    persons = demo_persons()
    async with Bench(stack, persons) as bench:
        # Warm-up: verify every demo person once (persons who cannot verify, e.g. no phone, are left out).
        ok = []
        for start in range(0, len(persons), 8):
            group = persons[start:start + 8]
            results = await asyncio.gather(*(bench.verify(Level(), "warm", BenchCitizen(), p, "查余额")
                                             for p in group), return_exceptions=True)
            ok += [p for p, r in zip(group, results) if not isinstance(r, BaseException)]
        bench.persons = ok
        report(f"demo persons who verify: {len(ok)} of {len(persons)}")
        report("")
        header = (f"{'offered/s':>9} {'sent/s':>8} {'turns':>6} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} "
                  f"{'p99 ms':>7}   CPU cores busy per process   RSS MiB")
        report(header)
        names = [n for n in stack.services if n != "speech"]
        for rate in args.rates:
            before = {n: cpu_s(stack.services[n].process.pid) for n in names}
            profiling = []
            if args.profile == rate and not PROFILER.exists():
                report(f"{'':>9} no profile: py-spy is not at {PROFILER} (scripts/bench.sh installs it)")
            elif args.profile == rate:
                profiling = start_profilers(stack, args.profile_s, Path(tempfile.mkdtemp(prefix="anju-prof-")))
            level, elapsed, in_window = await bench.run_level(rate, args.duration)
            busy = {n: (cpu_s(stack.services[n].process.pid) - before[n]) / elapsed for n in names}
            all_ms = level.all_latencies
            report(f"{rate:>9.0f} {in_window:>8.1f} {len(all_ms):>6} {sum(level.errors.values()):>6} "
                   f"{percentile(all_ms, 50):>7.0f} {percentile(all_ms, 95):>7.0f} {percentile(all_ms, 99):>7.0f}   "
                   + " ".join(f"{n} {busy[n]:.2f}" for n in names) + "   "
                   + " ".join(f"{n} {rss_mib(stack.services[n].process.pid):.0f}" for n in names))
            for scenario, values in sorted(level.latencies.items()):
                report(f"{'':>9} {scenario:<9} sessions {level.sessions[scenario]:>4} turns {len(values):>5} "
                       f"p50 {percentile(values, 50):>5.0f} p95 {percentile(values, 95):>5.0f} ms")
            for error, count in level.errors.most_common(5):
                report(f"{'':>9} error x{count}: {error}")
            for name, proc, raw in profiling:
                proc.wait(timeout=args.profile_s + 60)
                if raw.exists():
                    out = ROOT / "bench" / "results" / f"profile_{name}.txt"
                    out.write_text("\n".join([f"py-spy record --rate 50 --nonblocking, {args.profile_s} s, "
                                              f"{name} under chat_load at {rate:.0f} offered turns/s, "
                                              f"{args.bot_processes} bot process pair(s), {time.strftime('%Y-%m-%d %H:%M')}"]
                                             + summarize_profile(raw)) + "\n", encoding="utf-8")
                    report(f"{'':>9} profile of {name}: {out.relative_to(ROOT)}")
                else:
                    report(f"{'':>9} profile of {name} failed: {proc.stderr.read().decode()[-200:]}")
            await asyncio.sleep(3)  # the last conversations' handoff cancellations settle


if __name__ == "__main__":
    sys.exit(main())
