"""Keeps the run command's processes alive: a crashed process is started again, with back-off.

One crash of the action server or Rasa must not take the whole service down (the gateway
answers FAQ questions from the knowledge base meanwhile), and a process that crashes at once
every time must not spin: waits grow 1 s, 2 s, 4 s … up to 60 s, and start from 1 s again once
a process has stayed up for a minute. Every crash is reported with the last lines of its log.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from stack import Stack


@dataclass
class BackOff:
    base_s: float = 1.0
    max_s: float = 60.0
    stable_s: float = 60.0  # up this long: the next crash counts as the first again

    def delay(self, crashes_in_a_row: int) -> float:
        return min(self.max_s, self.base_s * 2 ** max(crashes_in_a_row - 1, 0))


@dataclass
class Supervisor:
    stack: Stack
    say: Callable[[str], None]
    back_off: BackOff = field(default_factory=BackOff)
    clock: Callable[[], float] = time.monotonic
    crashes_in_a_row: dict[str, int] = field(default_factory=dict)
    restart_at: dict[str, float] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    def tick(self) -> None:
        """Call about once a second: notices crashes and restarts what is due."""
        now = self.clock()
        for name in self.stack.dead():
            if name not in self.restart_at:
                svc = self.stack.services[name]
                uptime = now - svc.launched_at if svc.launched_at else 0.0
                crashes = 1 if uptime >= self.back_off.stable_s else self.crashes_in_a_row.get(name, 0) + 1
                self.crashes_in_a_row[name] = crashes
                wait = self.back_off.delay(crashes)
                self.restart_at[name] = now + wait
                self.say(f"\nWARNING: {name} stopped (exit code {svc.process.returncode}); "
                         f"restarting in {wait:.0f} s. Last log lines:\n{self.stack.tail(name, 10)}")
            elif now >= self.restart_at[name]:
                del self.restart_at[name]
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.stack.launch(name)
                self.say(f"==> {name} restarted (restart {self.restarts[name]})")
