"""How long a citizen and a staff member wait for each other's picture, in two real Chromium pages
on the real stack (media through the gateway's relay, loopback ICE): staff press 接待 → the citizen
sees the recording notice, and the citizen presses 同意并开始视频 → both sides show the other's video
(videoWidth > 0, polled every 20 ms). Repeats a few rounds; prints each and the median.

    PYTHONPATH=. ANJU_APP_VENV=... ANJU_RASA_VENV=... ANJU_MODEL_PATH=... <app venv>/bin/python bench/video_setup.py [--rounds 5]

Target (issue 19): accept → both sides see video ≤ 0.5 s; the consent step sits between, so it is
reported apart: what the machine controls is consent click → video on both sides.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyotp
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts", ROOT / "tests", ROOT / "bench"):
    sys.path.insert(0, str(path))
from citizen import LIFTED_LIMITS  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from gateway_restarts import ALWAYS_OPEN  # noqa: E402
from stack import Ports, Stack, stack_from_env  # noqa: E402

from gateway.settings import DEV_STAFF_ACCOUNTS  # noqa: E402

BOTH_VIDEOS = ("document.getElementById('remote').videoWidth > 0",
               "document.getElementById('anju-handoff-remote') && document.getElementById('anju-handoff-remote').videoWidth > 0")


def until(page, expression: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.02)
    return time.perf_counter()


def one_round(browser, gateway: str, staff) -> tuple[float, float]:
    context = browser.new_context()
    citizen = context.new_page()
    try:
        citizen.goto(gateway + "/")
        citizen.wait_for_selector("text=已连接", timeout=30000)
        citizen.get_by_role("button", name="转人工").click()
        citizen.wait_for_selector("#anju-handoff >> text=前面还有", timeout=30000)
        notice = None
        for _ in range(5):  # the console redraws its queue while polling: a click can land on a card just replaced
            staff.get_by_role("button", name="接待").first.wait_for(timeout=30000)
            accepted = time.perf_counter()
            staff.get_by_role("button", name="接待").first.click()
            try:
                citizen.wait_for_selector("text=全程录音录像", timeout=5000)
            except PlaywrightTimeout:
                continue
            notice = time.perf_counter() - accepted
            break
        if notice is None:
            raise TimeoutError("the citizen never saw the recording notice")
        agree = citizen.get_by_role("button", name="同意并开始视频")
        agreed = time.perf_counter()
        agree.click()
        staff_sees, citizen_sees = until(staff, BOTH_VIDEOS[0]), until(citizen, BOTH_VIDEOS[1])
        video = max(staff_sees, citizen_sees) - agreed
        staff.fill("#summary", "测速")
        staff.get_by_role("button", name="结束服务").click()
        citizen.wait_for_selector("#anju-handoff", state="detached", timeout=30000)
        return notice, video
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "video_setup.txt"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        stack: Stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update({**ALWAYS_OPEN, **LIFTED_LIMITS, "VIDEO_RECORDINGS_DIR": str(Path(tmp) / "recordings")})
        stack.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                staff = browser.new_context().new_page()
                staff.goto(stack.urls["gateway"] + "/console")
                account = DEV_STAFF_ACCOUNTS[0]
                staff.fill("#username", account.username)
                staff.fill("#password", "dev-staff-pass")
                staff.fill("#totp", pyotp.TOTP(account.totp_secret.get_secret_value()).now())
                staff.get_by_role("button", name="登录").click()
                for n in range(args.rounds):
                    results.append(one_round(browser, stack.urls["gateway"], staff))
                    print(f"round {n + 1}: accept -> recording notice {results[-1][0]:.2f} s, "
                          f"consent -> video on both sides {results[-1][1]:.2f} s", flush=True)
                browser.close()
        finally:
            stack.stop()
    load = os.getloadavg()[0]
    lines = [f"video_setup  {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores, load average {load:.1f}",
             *(f"round {i + 1}: accept -> recording notice {a:.2f} s; consent -> video on both sides {v:.2f} s"
               for i, (a, v) in enumerate(results)),
             f"median: accept -> notice {statistics.median(a for a, _ in results):.2f} s; "
             f"consent -> both videos {statistics.median(v for _, v in results):.2f} s (target 0.5 s)"]
    print("\n".join(lines))
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
