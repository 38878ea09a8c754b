"""Each attack from the identity and hardening issue, played against the real stack.

Every test tries what an attacker would and checks that it reaches no personal data and
breaks nothing for anyone else; where a test could pass for the wrong reason (a broken stack
answers nothing to anyone), a positive control shows the legitimate path still works.
"""
import hashlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pyotp
import pytest
import yaml
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from bot.identity_assertion import sign
from citizens import Citizens, sender_id_of, texts
from gateway.settings import DEV_STAFF_ACCOUNTS
from gateway_restarts import ALWAYS_OPEN, gateway_with

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# Demo persons (fund/DEMO_PERSONS.md) no other test uses: the brute force below locks one.
FIXATED = ("340503199607026801", "水悦华")
BRUTE_FORCED = ("320402199302281531", "谢翔")
BOUND_OPENID = "o_demo_renter_cz"  # bound to demo person #1 in the sandbox core


def latest_code(stack) -> str:
    resp = httpx.get(f"{stack.urls['core']}/dev/outbox", params={"limit": 1}, timeout=10,
                     headers={"Authorization": f"Bearer {stack.core_token}"})
    return resp.json()["messages"][0]["code"]


def start_verification(citizens: Citizens, label: str, person: tuple[str, str]) -> None:
    assert "身份证" in texts(citizens.say(label, "查一下我的公积金余额"))
    assert "姓名" in texts(citizens.say(label, person[0]))
    assert "验证码" in texts(citizens.say(label, person[1]))


@pytest.fixture(scope="module")
def hardened(stack):
    """The gateway behind a (simulated) proxy on loopback, so tests can speak from several client
    IPs through X-Forwarded-For, with short WebSocket timeouts and staff hours always open."""
    env = {**ALWAYS_OPEN, "TRUSTED_PROXIES": '["127.0.0.1"]', "WS_FIRST_FRAME_TIMEOUT_S": "2",
           "WS_IDLE_TIMEOUT_S": "3"}
    with gateway_with(stack, env):
        yield stack


# --- sessions ------------------------------------------------------------------------------
def test_a_guessed_session_id_gets_a_new_empty_conversation(stack):
    citizens = Citizens(stack.urls["gateway"])
    citizens.say("victim", "租房可以提取公积金吗")
    guessed = "A" * 43
    resp = httpx.post(f"{stack.urls['gateway']}/api/chat", json={"text": "常州呢"}, timeout=30,
                      headers={"Authorization": f"Bearer {guessed}"})
    assert resp.status_code == 200 and resp.json()["token"] != guessed
    # Without the victim's context "常州呢" is not a follow-up to the rent question.
    assert "【常州】" not in texts(resp.json()["messages"])
    assert "【常州】" in texts(citizens.say("victim", "常州呢"))  # control: the victim's own session has it


def test_a_sender_id_in_the_body_cannot_join_someone_elses_conversation(stack):
    citizens = Citizens(stack.urls["gateway"])
    citizens.say("victim", "租房可以提取公积金吗")
    victim_sender = sender_id_of(stack, citizens.tokens["victim"])
    resp = httpx.post(f"{stack.urls['gateway']}/api/chat", json={"sender_id": victim_sender, "text": "常州呢"}, timeout=30)
    assert resp.status_code == 200 and "【常州】" not in texts(resp.json()["messages"])
    assert "【常州】" in texts(citizens.say("victim", "常州呢"))


def test_a_session_id_stolen_before_verification_is_worthless_after_it(stack):
    citizens = Citizens(stack.urls["gateway"])
    start_verification(citizens, "victim", FIXATED)
    stolen = citizens.tokens["victim"]
    assert "身份验证成功" in texts(citizens.say("victim", latest_code(stack)))
    assert citizens.tokens["victim"] != stolen  # rotated
    resp = httpx.post(f"{stack.urls['gateway']}/api/chat", json={"text": "查一下我的公积金余额"}, timeout=60,
                      headers={"Authorization": f"Bearer {stolen}"})
    reply = texts(resp.json()["messages"])
    assert "余额" not in reply.replace("查一下我的公积金余额", "") or "身份证" in reply
    assert "身份证" in reply  # the attacker is asked to verify, as any stranger
    assert "余额" in texts(citizens.say("victim", "查一下我的公积金余额"))  # control


# --- internal services ----------------------------------------------------------------------
def load_domain() -> dict:
    merged: dict = {"slots": {}, "forms": {}, "responses": {}, "actions": [], "intents": []}
    for path in sorted((ROOT / "bot" / "domain").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("slots", "forms", "responses"):
            merged[key].update(data.get(key) or {})
    return merged


def action_call(stack, metadata: dict, sender: str = "attacker", token: str | None = "stack") -> httpx.Response:
    """What the issue reproduced: a crafted request straight to the action server."""
    domain = load_domain()
    slots = {name: None for name in domain["slots"]}
    slots["verified"] = False
    body = {"next_action": "validate_verification_form", "sender_id": sender, "version": "3.6.2", "domain": domain,
            "tracker": {"sender_id": sender, "slots": slots, "events": [], "paused": False, "followup_action": None,
                        "active_loop": {}, "latest_action_name": "action_listen",
                        "latest_message": {"text": "查余额", "intent": {"name": "check_balance", "confidence": 1.0},
                                           "entities": [], "metadata": metadata}}}
    headers = {} if token is None else {"X-Anju-Action-Token": stack.action_server_token if token == "stack" else token}
    return httpx.post(f"{stack.urls['actions']}/webhook", json=body, headers=headers, timeout=20)


def verified_by(resp: httpx.Response) -> bool:
    assert resp.status_code == 200, resp.text
    return any(e.get("event") == "slot" and e.get("name") == "verified" and e.get("value") is True
               for e in resp.json()["events"])


def test_the_action_server_refuses_callers_without_the_shared_secret(stack):
    for token in (None, "guess", ""):
        assert action_call(stack, {"wechat_openid": BOUND_OPENID}, token=token).status_code == 401
    assert httpx.get(f"{stack.urls['actions']}/health", timeout=5).status_code == 200


def test_the_action_server_listens_on_loopback_only(stack):
    port = f"{stack.ports.actions:04X}"
    listening = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[1].endswith(":" + port) and line.split()[3] == "0A"]
    assert listening == ["0100007F:" + port]  # 127.0.0.1, not 0.0.0.0
    assert not any(line.split()[1].endswith(":" + port) for line in Path("/proc/net/tcp6").read_text().splitlines()[1:])


def test_forged_or_stale_identity_never_verifies_anyone_at_the_action_server(stack):
    key = stack.identity_assertion_key.encode()
    now = time.time()
    forged = [
        {"wechat_openid": BOUND_OPENID},                                                   # the old hole
        {"identity_assertion": sign(b"not-the-key", "attacker", "wechat_openid", BOUND_OPENID)},
        {"identity_assertion": sign(key, "someone-else", "wechat_openid", BOUND_OPENID)},   # replayed elsewhere
        {"identity_assertion": sign(key, "attacker", "wechat_openid", BOUND_OPENID, ttl_s=60, now=now - 600)},
        {"identity_assertion": "v1.e30.AAAA"},
    ]
    for metadata in forged:
        assert not verified_by(action_call(stack, metadata)), metadata
    # Control: what the gateway itself would sign for this sender does verify (so the above could fail).
    assert verified_by(action_call(stack, {"identity_assertion": sign(key, "attacker", "wechat_openid", BOUND_OPENID)}))


def test_rasa_takes_messages_from_the_gateway_alone(stack):
    body = {"sender": "attacker", "message": "查余额", "metadata": {"wechat_openid": BOUND_OPENID}}
    assert httpx.post(f"{stack.urls['rasa']}/webhooks/rest/webhook", json=body, timeout=10).status_code == 404
    resp = httpx.post(f"{stack.urls['rasa']}/webhooks/gateway/webhook", json=body, timeout=10)
    assert resp.status_code in (401, 403)
    resp = httpx.post(f"{stack.urls['rasa']}/webhooks/gateway/webhook", json=body, timeout=10,
                      headers={"X-Anju-Gateway-Token": "guess"})
    assert resp.status_code in (401, 403)


def test_metadata_sent_through_the_gateway_cannot_claim_an_identity(stack):
    citizens = Citizens(stack.urls["gateway"])
    reply = texts(citizens.say("forger", "查一下我的公积金余额",
                               {"wechat_openid": BOUND_OPENID, "identity_assertion": "v1.e30.AAAA", "verified": True}))
    assert "身份证" in reply and "验证成功" not in reply


# --- one-time codes ----------------------------------------------------------------------------
def test_one_time_code_brute_force_locks_the_person_even_against_the_right_code(stack):
    citizens = Citizens(stack.urls["gateway"])
    start_verification(citizens, "brute", BRUTE_FORCED)
    right = latest_code(stack)
    wrong = [f"{n:06d}" for n in range(100000, 100010) if f"{n:06d}" != right]
    replies = [texts(citizens.say("brute", code)) for code in wrong[:5]]
    assert "锁定" in replies[-1]
    start = texts(citizens.say("brute", "查一下我的公积金余额"))
    later = [start]
    if "身份证" in start:  # the form starts again: the core refuses the person while locked
        later.append(texts(citizens.say("brute", BRUTE_FORCED[0])))
        later.append(texts(citizens.say("brute", BRUTE_FORCED[1])))
    later.append(texts(citizens.say("brute", right)))
    assert "身份验证成功" not in "\n".join(later) and "余额为" not in "\n".join(later)


# --- staff login ------------------------------------------------------------------------------
def staff_login(stack, account, password: str, ip: str, code: str | None = None) -> httpx.Response:
    code = code or pyotp.TOTP(account.totp_secret.get_secret_value()).now()
    return httpx.post(f"{stack.urls['gateway']}/api/staff/login", timeout=20, headers={"X-Forwarded-For": ip},
                      json={"username": account.username, "password": password, "totp": code})


def test_a_stranger_guessing_passwords_is_slowed_and_cannot_lock_out_the_real_staff(hardened):
    account = DEV_STAFF_ACCOUNTS[1]  # dev-supervisor: the handoff tests log in as dev-staff
    statuses = [staff_login(hardened, account, f"guess-{n}", "203.0.113.66").status_code for n in range(7)]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    assert int(staff_login(hardened, account, "guess", "203.0.113.66").headers["Retry-After"]) > 0
    # The supervisor at their own desk still gets in (a code of the next window: codes work once).
    future = pyotp.TOTP(account.totp_secret.get_secret_value()).at(time.time() + 30)
    resp = staff_login(hardened, account, "dev-super-pass", "198.51.100.20", code=future)
    assert resp.status_code == 200, resp.text


def test_unknown_usernames_are_refused_like_wrong_passwords(hardened):
    resp = staff_login(hardened, DEV_STAFF_ACCOUNTS[0].model_copy(update={"username": "nobody"}), "x", "203.0.113.9")
    assert resp.status_code == 401 and resp.json()["detail"] == "用户名、密码或动态验证码不正确。"


def test_pages_carry_security_headers(stack):
    for path in ("/", "/console", "/api/staff/queue"):
        headers = httpx.get(stack.urls["gateway"] + path, timeout=10).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"


# --- limits ----------------------------------------------------------------------------------
def test_oversized_bodies_are_refused_and_the_service_goes_on(stack):
    gateway = stack.urls["gateway"]
    big_chat = httpx.post(f"{gateway}/api/chat", content=b'{"text": "' + b"a" * 17000 + b'"}',
                          headers={"Content-Type": "application/json"}, timeout=10)
    assert big_chat.status_code == 413 and "太大" in big_chat.json()["detail"]
    big_sdp = httpx.post(f"{gateway}/api/video/offer", json={"token": "x", "sdp": "v=0\r\n" * 20000, "type": "offer"},
                         timeout=10)
    assert big_sdp.status_code == 413
    assert "公积金" in texts(Citizens(gateway).say("after-big", "你好"))


def test_silent_websockets_are_closed(hardened):
    base = hardened.urls["gateway"].replace("http", "ws")
    started = time.monotonic()
    with connect(f"{base}/ws/handoff/0123456789abcdef", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)  # never sent the ticket key
    assert time.monotonic() - started < 8
    with connect(f"{base}/ws/chat", open_timeout=10) as ws:
        ws.recv(timeout=5)  # the session frame
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)  # idle past WS_IDLE_TIMEOUT_S


def test_a_websocket_from_another_site_is_refused(stack):
    base = stack.urls["gateway"].replace("http", "ws")
    with pytest.raises(InvalidStatus):
        with connect(f"{base}/ws/chat", open_timeout=10, origin="https://evil.example"):
            pass


def test_priority_cannot_be_requested_by_a_request_field(hardened):
    citizens = Citizens(hardened.urls["gateway"])
    gateway = hardened.urls["gateway"]
    resp = httpx.post(f"{gateway}/api/handoff", json={"priority": True, "reason": "elderly"},
                      headers=citizens.headers("queue-jumper"), timeout=20)
    assert resp.status_code == 200, resp.text
    queued = [m["custom"] for m in resp.json()["messages"] if (m.get("custom") or {}).get("type") == "handoff_queued"]
    assert queued and queued[0]["priority"] is False
    httpx.post(f"{gateway}/api/handoff/{queued[0]['ticket_id']}/cancel", json={"key": queued[0]["key"]}, timeout=10)


def test_self_declared_elder_mode_gets_the_priority_lane_once_per_session(hardened):
    citizens = Citizens(hardened.urls["gateway"])
    gateway = hardened.urls["gateway"]
    lanes = []
    for _ in range(2):
        # From an address of its own: other tests' elder-mode requests count against 127.0.0.1.
        resp = httpx.post(f"{gateway}/api/handoff", json={"elder_mode": True}, timeout=20,
                          headers={**citizens.headers("elder"), "X-Forwarded-For": "198.51.100.77"})
        queued = [m["custom"] for m in resp.json()["messages"] if (m.get("custom") or {}).get("type") == "handoff_queued"][0]
        lanes.append(queued["priority"])
        httpx.post(f"{gateway}/api/handoff/{queued['ticket_id']}/cancel", json={"key": queued["key"]}, timeout=10)
    assert lanes == [True, False]


def test_a_booking_flood_is_stopped(hardened):
    citizens = Citizens(hardened.urls["gateway"])
    statuses = [httpx.post(f"{hardened.urls['gateway']}/api/handoff/appointments", json={"slot": "2099-01-01T09:00:00"},
                           headers=citizens.headers("flooder"), timeout=10).status_code for _ in range(5)]
    assert statuses[:3] == [409] * 3 and statuses[-1] == 429


def test_chat_flood_from_one_session_is_limited_and_others_still_chat(stack):
    citizens = Citizens(stack.urls["gateway"])
    statuses = [citizens.post("flood", "你好").status_code for _ in range(32)]
    assert 429 in statuses and statuses[0] == 200
    assert "公积金" in texts(citizens.say("bystander", "你好"))


# --- audit chain ------------------------------------------------------------------------------
def audit_copy(stack, tmp_path: Path) -> tuple[Path, Path]:
    db, anchor = tmp_path / "core.db", tmp_path / "anchor.log"
    with sqlite3.connect(stack.data_dir / "core.db") as source, sqlite3.connect(db) as target:
        source.backup(target)
    return db, anchor


def audit_cli(stack, command: str, db: Path, anchor: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(stack.app_venv / "bin" / "python"), "-m", "fund.audit", command,
                           "--database-url", f"sqlite:///{db}", "--anchor-path", str(anchor)],
                          capture_output=True, text=True, timeout=120, env=stack.environment(), cwd=ROOT)


def test_rewriting_the_audit_chain_without_the_key_is_detected(stack, tmp_path):
    db, anchor = audit_copy(stack, tmp_path)
    assert audit_cli(stack, "anchor", db, anchor).returncode == 0
    assert audit_cli(stack, "verify", db, anchor).returncode == 0
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT seq, timestamp, actor, action, subject, outcome, prev_hash FROM audit_records "
                           "ORDER BY seq LIMIT 1 OFFSET 2").fetchone()
        fields = dict(zip(("seq", "timestamp", "actor", "action", "subject", "outcome", "prev_hash"), row))
        fields["outcome"] = "200 rewritten"
        plain = hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False,
                                          separators=(",", ":")).encode()).hexdigest()
        conn.execute("UPDATE audit_records SET outcome = ?, hash = ? WHERE seq = ?", ("200 rewritten", plain, row[0]))
    result = audit_cli(stack, "verify", db, anchor)
    assert result.returncode == 1 and "BROKEN" in result.stdout.upper()


def test_truncating_the_audit_chain_is_detected_against_the_anchor(stack, tmp_path):
    db, anchor = audit_copy(stack, tmp_path)
    assert audit_cli(stack, "anchor", db, anchor).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_records WHERE seq > (SELECT MAX(seq) - 2 FROM audit_records)")
    result = audit_cli(stack, "verify", db, anchor)
    assert result.returncode == 1, result.stdout


@pytest.mark.parametrize("service, argv, names", [
    ("core", ["app", "-m", "fund", "--port", "1"], "CORE_API_TOKEN"),
    ("gateway", ["app", "-m", "gateway", "--port", "1"], "RASA_TOKEN"),
    ("actions", ["rasa", "-m", "actions", "--port", "1"], "ACTION_SERVER_TOKEN"),
])
def test_every_service_refuses_development_secrets_when_the_environment_is_unset(stack, service, argv, names):
    """ANJU_ENV unset means production: with the development defaults nothing starts, and the
    one error line names the setting to fix (so a forgotten variable fails closed, not open)."""
    python = (stack.app_venv if argv[0] == "app" else stack.rasa_venv) / "bin" / "python"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": "/tmp"}
    result = subprocess.run([str(python), *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, result.stdout
    assert names in result.stdout + result.stderr
