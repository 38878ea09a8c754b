"""Helpers for the review tests on the real stack: a submitted online application made through the
core's API directly (login code and signing code from the sandbox SMS outbox), a reviewer's console
login through the gateway, and the audit chain's verification."""
from __future__ import annotations

import secrets
import subprocess
import time

import httpx
import pyotp

from gateway.settings import DEV_STAFF_ACCOUNTS

REVIEWER = "dev-reviewer"
REVIEWER_PASSWORD = "dev-review-pass"


def core_client(stack) -> httpx.Client:
    return httpx.Client(base_url=stack.urls["core"], timeout=20,
                        headers={"Authorization": f"Bearer {stack.core_token}"})


def _code(core: httpx.Client) -> str:
    return core.get("/dev/outbox", params={"limit": 1, "kind": "code"}).json()["messages"][0]["code"]


def submitted_application(stack, person: tuple[str, str], kind: str, amount: float, channel_ref: str) -> dict:
    """Verifies `person` from `channel_ref` (the sender id notices go to) and submits a signed application."""
    id_number, name = person
    with core_client(stack) as core:
        started = core.post("/identity/challenges", json={"id_number": id_number, "name": name,
                                                          "channel_ref": channel_ref})
        assert started.status_code == 201, started.text
        verified = core.post(f"/identity/challenges/{started.json()['challenge_id']}/verify",
                             json={"code": _code(core)})
        assert verified.status_code == 200, verified.text
        ref = verified.json()["person_ref"]
        offer = core.get(f"/persons/{ref}/applications/offer", params={"kind": kind})
        assert offer.status_code == 200, offer.text
        amount = min(amount, offer.json()["max_amount"])
        sign = core.post("/applications/sign-challenges", json={"person_ref": ref, "kind": kind, "amount": amount})
        assert sign.status_code == 201, sign.text
        app = core.post("/applications", json={"person_ref": ref, "kind": kind, "amount": amount,
                                               "idempotency_key": f"it-review-{secrets.token_hex(6)}",
                                               "challenge_id": sign.json()["challenge_id"], "code": _code(core)})
        assert app.status_code == 201, app.text
        return app.json()


def totp_now(username: str = REVIEWER) -> str:
    account = next(a for a in DEV_STAFF_ACCOUNTS if a.username == username)
    return pyotp.TOTP(account.totp_secret.get_secret_value()).now()


def wait_for_fresh_totp_window() -> None:
    """A TOTP code logs in once: a second login of the same account waits for the next 30-s step."""
    time.sleep(30.5 - time.time() % 30)


_USED_STEP: dict[str, int] = {}   # account -> the 30-s TOTP step a login through here used


def staff_login(stack, username: str = REVIEWER, password: str = REVIEWER_PASSWORD) -> dict:
    """The console's bearer header for a dev account (dev-staff-pass, dev-super-pass, dev-review-pass).
    A step's code is never sent twice from here (no failed attempt counts against the IP); a login
    elsewhere in the same step is waited out once."""
    if _USED_STEP.get(username) == int(time.time() // 30):
        wait_for_fresh_totp_window()
    for _ in range(2):
        step = int(time.time() // 30)
        response = httpx.post(f"{stack.urls['gateway']}/api/staff/login", timeout=20, json={
            "username": username, "password": password, "totp": totp_now(username)})
        if response.status_code == 200:
            _USED_STEP[username] = step
            return {"Authorization": f"Bearer {response.json()['token']}"}
        wait_for_fresh_totp_window()   # this step's code was used by an earlier login
    raise AssertionError(f"{username} login refused: {response.text}")


def assert_audit_chain_verifies(stack) -> None:
    run = subprocess.run([str(stack.app_venv / "bin" / "python"), "-m", "fund.audit", "verify",
                          "--database-url", f"sqlite:///{stack.data_dir / 'core.db'}"],
                         capture_output=True, text=True, timeout=60, env=stack.environment())
    assert run.returncode == 0, run.stdout + run.stderr
