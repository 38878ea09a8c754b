"""Shared fixtures.

`stack` starts the real service (redis-server, sandbox core, action server, rasa with
the trained model, gateway) once per test session on free ports in a temp dir; it needs
ANJU_APP_VENV, ANJU_RASA_VENV and ANJU_MODEL_PATH, which scripts/test.sh exports.
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts", ROOT / "tests", ROOT / "tests" / "fixtures" / "speech" / "zh"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from stack import Ports, Stack, stack_from_env  # noqa: E402

# Every service defaults to production, which refuses development secrets; tests run as "test".
os.environ.setdefault("ANJU_ENV", "test")
# The sandbox review rule approves and pays complete online applications after 120 s and 300 s by
# default: short in the test stack, so a test sees an application through to paid.
STACK_OVERRIDES = {"CORE_AUTO_APPROVE_S": "3", "CORE_AUTO_PAY_S": "3"}

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    running = stack_from_env(tmp_path_factory.mktemp("stack"), Ports.free())
    running.env_overrides.update(STACK_OVERRIDES)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def pytest_sessionfinish(session, exitstatus):
    """Fails the run if any log the suite produced holds an unmasked ID or phone number.

    scripts/test.sh points ANJU_LOG_SCAN_DIR at the folder that holds every log of the run
    (the stack's process logs under pytest's basetemp, rasa test output, action tests).
    """
    root = os.environ.get("ANJU_LOG_SCAN_DIR")
    if not root:
        return
    from logscan import scan_dir

    scanned, findings = scan_dir(Path(root))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for finding in findings[:50]:
        reporter.write_line(f"PII LEAK: {finding}", red=True)
    reporter.write_line(f"log scan: {scanned} log files, {len(findings)} unmasked ID/phone numbers")
    if findings:
        session.exitstatus = 1
