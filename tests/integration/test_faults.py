"""Fault suite, short sequence on the test stack: both redis servers, rasa, the core and the gateway are each killed
with SIGKILL once in the middle of a mixed workload (FAQ turns, verified balance and withdrawal
pre-check turns, handoff requests, WeChat pushes, audit records), restarted by scripts/supervisor.py, and nothing a
citizen or the core acknowledged is lost or done twice (bench/faults.py; the long version runs every
process, the action server and a media node included: bash scripts/bench.sh faults)."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from faults import FAULT_ENV, FaultRun, wechat_env  # noqa: E402
from stack import free_port  # noqa: E402
from wechat_simulator import SimulatorServer, WeChatSimulator  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture()
def fault_stack(stack):
    """The shared stack with always-open staff hours, lifted rate limits and a WeChat API simulator (gateway
    restarted), restored after."""
    saved = dict(stack.env_overrides)
    sim = WeChatSimulator()
    with SimulatorServer(sim, free_port()) as server:
        stack.env_overrides.update({**FAULT_ENV, **wechat_env(server.url)})
        stack.restart("gateway")
        try:
            yield stack, sim
        finally:
            stack.env_overrides.clear()
            stack.env_overrides.update(saved)
            for name in stack.dead():  # a failed run may leave one down: bring it back for the next tests
                stack.start_one(name)
            stack.restart("gateway")


def test_kill_9_of_each_process_loses_nothing_acknowledged(fault_stack):
    lines = []
    stack, sim = fault_stack
    run = FaultRun(stack, lines.append, faq_citizens=3, verified=2, wechat=sim)
    try:
        with run:
            rows = [run.kill(name) for name in os.environ.get("FAULTS_ONLY", "redis,redis-bot,core,gateway,rasa").split(",")]
    finally:
        run.work.cancel_tickets()  # the test stack is shared: leave its queue as it was
    report = run.report()
    print(report)
    for row in rows:
        assert (row.turns_lost, row.queue_lost, row.audit_lost, row.duplicates) == (0, 0, 0, 0), report
        assert row.unclear == 0, report  # every error a citizen saw was a 503 with Retry-After and the hotline
        assert row.verify_ok and row.handoff_misses == 0, report
    # The workload really ran through the faults: answered turns, queued tickets and audit records.
    assert sum(r.acked for r in rows) >= 20 and sum(r.queue_acked for r in rows) >= 8, report
    assert sum(r.audit_acked for r in rows) >= 10 and sum(r.wechat_acked for r in rows) >= 8, report
    assert sum(r.kb for r in rows) >= 1, report  # while Rasa restarted, FAQ answers came from the knowledge base
