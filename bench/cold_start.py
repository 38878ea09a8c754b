"""Cold start: from spawning every process to the first correct FAQ answer a citizen gets.

The stack launches in waves (scripts/stack.py): the gateway comes up within seconds and answers
FAQ questions from the knowledge base (gateway/faq_fallback.py) while Rasa still loads its model.
A citizen asks "租房怎么提取公积金" every half second from the moment the processes are spawned;
this prints when the first correct answer came (and whether from the knowledge base or the bot)
and when the bot itself first answered. Target: first correct FAQ answer ≤ 20 s.

    PYTHONPATH=. ANJU_APP_VENV=... ANJU_RASA_VENV=... ANJU_MODEL_PATH=... <app venv>/bin/python bench/cold_start.py
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from stack import Ports, Stack, stack_from_env  # noqa: E402

QUESTION = "租房怎么提取公积金"
FACT = "连续足额缴存"            # in the withdraw_rent answer, whoever gives it
FROM_KNOWLEDGE_BASE = "知识库"   # the fallback's note (gateway/faq_fallback.RESTARTING_NOTE)


def ask(gateway: str) -> str:
    """The answer's text, or "" while nothing answers."""
    try:
        token = httpx.post(f"{gateway}/api/session", timeout=5).json()["token"]
        resp = httpx.post(f"{gateway}/api/chat", json={"text": QUESTION}, timeout=20,
                          headers={"Authorization": f"Bearer {token}"})
        if resp.status_code != 200:
            return ""
        return "\n".join(m.get("text") or "" for m in resp.json()["messages"])
    except (httpx.HTTPError, ValueError, KeyError):
        return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cold_start.txt"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        stack: Stack = stack_from_env(Path(tmp), Ports.free())
        t0 = time.perf_counter()
        starter = threading.Thread(target=stack.start, daemon=True)
        starter.start()
        first_kb = first_bot = None
        try:
            while first_bot is None and time.perf_counter() - t0 < 300:
                answer = ask(stack.urls["gateway"])
                now = time.perf_counter() - t0
                if FACT in answer:
                    if FROM_KNOWLEDGE_BASE in answer:
                        first_kb = first_kb or now
                    else:
                        first_bot = now
                time.sleep(0.5)
            starter.join(timeout=300)
        finally:
            stack.stop()
    first_correct = min(t for t in (first_kb, first_bot) if t is not None) if (first_kb or first_bot) else None
    lines = [f"cold_start  {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores",
             f"question: {QUESTION}  (asked every 0.5 s from spawning the processes)",
             f"first correct FAQ answer: {first_correct:.1f} s" if first_correct else "first correct FAQ answer: none",
             f"  from the knowledge base while Rasa loads: {first_kb:.1f} s" if first_kb else
             "  from the knowledge base while Rasa loads: none (Rasa answered first)",
             f"first answer by the bot itself (Rasa ready): {first_bot:.1f} s" if first_bot else
             "first answer by the bot itself: none within 300 s"]
    print("\n".join(lines))
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if first_correct and first_correct <= 20 else 1


if __name__ == "__main__":
    sys.exit(main())
