"""The run command's supervisor restarts a crashed process with growing waits instead of stopping."""
import sys
import time

from stack import Service, Stack
from supervisor import BackOff, Supervisor


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stack_with(tmp_path, argv) -> Stack:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"")
    stack = Stack(tmp_path / "data", model, tmp_path / "app", tmp_path / "rasa")
    stack.services = {"worker": Service("worker", argv, None, 5, check=lambda: True)}
    return stack


def wait_dead(stack: Stack) -> None:
    deadline = time.monotonic() + 10
    while not stack.dead() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stack.dead() == ["worker"]


def test_back_off_doubles_up_to_a_ceiling():
    assert [BackOff().delay(n) for n in (1, 2, 3, 4, 7, 20)] == [1, 2, 4, 8, 60, 60]


def test_a_process_crashing_at_once_is_restarted_with_growing_waits_and_the_crash_is_reported(tmp_path):
    stack = stack_with(tmp_path, [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    clock, said = Clock(), []
    supervisor = Supervisor(stack, said.append, clock=clock)
    stack.launch("worker")
    waits = []
    for _ in range(3):
        wait_dead(stack)
        supervisor.tick()  # notices the crash
        due = supervisor.restart_at["worker"]
        waits.append(due - clock.now)
        clock.now = due - 0.1
        supervisor.tick()
        assert supervisor.restart_at.get("worker") == due  # not before its time
        clock.now = due
        supervisor.tick()  # restarts it
        assert "worker" not in supervisor.restart_at
    assert waits == [1, 2, 4] and supervisor.restarts["worker"] == 3
    assert "exit code 3" in said[0] and "boom" in said[0]


def test_a_process_that_stayed_up_a_minute_starts_the_back_off_again(tmp_path):
    stack = stack_with(tmp_path, [sys.executable, "-c", "import sys; sys.exit(1)"])
    clock = Clock()
    supervisor = Supervisor(stack, lambda m: None, clock=clock, crashes_in_a_row={"worker": 5})
    stack.launch("worker")
    stack.services["worker"].launched_at = clock.now
    clock.now += 120  # it ran two minutes before crashing
    wait_dead(stack)
    supervisor.tick()
    assert supervisor.restart_at["worker"] - clock.now == 1
