"""Hostile input at volume against the real stack: every HTTP operation of the gateway's OpenAPI
schema (schemathesis, positive and negative generation), the WebSocket endpoints and the WeChat
XML callback (hypothesis-driven clients). Counts answers by class and fails on any 5xx other than
a deliberate 503 with Retry-After, or on a service that stops answering: after each endpoint a
normal FAQ question must still get its answer.

    PYTHONPATH=. ANJU_APP_VENV=... ANJU_RASA_VENV=... ANJU_MODEL_PATH=... <app venv>/bin/python bench/fuzz_http.py [--examples 400]

Output in bench/results/fuzz_http.txt. Rate limits are lifted (bench/citizen.py) so that requests
reach the parsers instead of stopping at 429.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import pyotp
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from stack import Ports, Stack, stack_from_env  # noqa: E402

from citizen import LIFTED_LIMITS  # noqa: E402
from gateway.settings import DEV_STAFF_ACCOUNTS  # noqa: E402

FAQ, FACT = "租房怎么提取公积金", "连续足额缴存"


class Tally:
    def __init__(self) -> None:
        self.by_endpoint: dict[str, Counter] = {}
        self.failures: list[str] = []

    def record(self, endpoint: str, status: int, retry_after: bool = False, note: str = "") -> None:
        self.by_endpoint.setdefault(endpoint, Counter())[f"{status // 100}xx" if status else "closed"] += 1
        if status >= 500 and not (status == 503 and retry_after):
            self.failures.append(f"{endpoint} -> {status} {note[:160]}")

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_endpoint.values())


def new_session(gateway: str) -> str:
    return httpx.post(f"{gateway}/api/session", timeout=10).json()["token"]


def still_answers(gateway: str) -> bool:
    token = new_session(gateway)
    resp = httpx.post(f"{gateway}/api/chat", json={"text": FAQ}, timeout=60, headers={"Authorization": f"Bearer {token}"})
    return resp.status_code == 200 and FACT in json.dumps(resp.json(), ensure_ascii=False)


def fuzz_operations(gateway: str, headers_for, tally: Tally, examples: int, say) -> None:
    schema = schemathesis.openapi.from_url(f"{gateway}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case) -> None:
                try:
                    resp = case.call(base_url=gateway, headers=headers_for(operation.path), timeout=30)
                except Exception as exc:  # a refused or reset connection is a failure too
                    tally.record(name, 599, note=f"{type(exc).__name__}: {exc}")
                    return
                note = resp.content[:300].decode("utf-8", "replace") if resp.status_code >= 500 else ""  # WAV bodies too
                tally.record(name, resp.status_code, "retry-after" in resp.headers, note)

            try:
                call()
            except Exception as exc:  # generation limits of a mode (nothing negative to make) are not failures
                say(f"   {name} {mode.value}: generation stopped: {type(exc).__name__}")
        say(f"   {name}: {dict(tally.by_endpoint.get(name, {}))}")


def fuzz_websockets(gateway: str, token: str, tally: Tally, examples: int, say) -> None:
    ws_base = gateway.replace("http", "ws")
    frames = st.one_of(
        st.binary(max_size=4096),
        st.text(max_size=3000),
        st.dictionaries(st.sampled_from(["text", "config", "eof", "dtmf", "hangup", "type", "metadata", "ping"]),
                        st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
                                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                                     max_leaves=8), max_size=4).map(lambda d: json.dumps(d)))
    for path in ("/ws/chat", "/ws/wx/chat", "/ws/speech", "/ws/voice", "/ws/handoff/t-fuzz"):
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(batch=st.lists(frames, min_size=1, max_size=5))
        def session(batch) -> None:
            try:
                with connect(ws_base + path, open_timeout=10, close_timeout=2,
                             additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                    for frame in batch:
                        ws.send(frame)
                    try:
                        ws.recv(timeout=0.3)
                    except TimeoutError:
                        pass
                tally.record(path, 101)
            except WebSocketException as exc:
                # A deliberate close (policy, bad data, too big, try again, the app's own 4xxx codes) is
                # an answer; 1011 (internal error) and 1006 (dropped without a close frame) are not.
                code = getattr(getattr(exc, "rcvd", None), "code", 0) or 1006
                tally.record(path, 500 if code in (1006, 1011) else 0, note=f"close {code} {exc}")
            except (OSError, TimeoutError) as exc:
                tally.record(path, 599, note=f"{type(exc).__name__}: {exc}")

        session()
        say(f"   {path}: {dict(tally.by_endpoint.get(path, {}))}")


def fuzz_wechat_callback(gateway: str, tally: Tally, examples: int) -> None:
    params = st.fixed_dictionaries({}, optional={k: st.text(max_size=80) for k in
                                                 ("signature", "timestamp", "nonce", "echostr", "msg_signature",
                                                  "encrypt_type", "openid")})
    xml_bodies = st.one_of(st.binary(max_size=4096), st.builds(
        lambda tag, text: f"<xml><{tag}><![CDATA[{text}]]></{tag}></xml>".encode(),
        st.sampled_from(["ToUserName", "FromUserName", "MsgType", "Content", "Encrypt", "MsgId"]), st.text(max_size=500)))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(query=params, body=xml_bodies, method=st.sampled_from(["GET", "POST"]))
    def push(query, body, method) -> None:
        resp = httpx.request(method, f"{gateway}/wechat/callback", params=query,
                             content=body if method == "POST" else None, timeout=30)
        tally.record("/wechat/callback", resp.status_code, "retry-after" in resp.headers, resp.text)

    push()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=300, help="examples per operation and generation mode")
    parser.add_argument("--ws-examples", type=int, default=150)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fuzz_http.txt"))
    args = parser.parse_args()
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    tally = Tally()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="anju-fuzz-") as tmp:
        stack: Stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update(LIFTED_LIMITS)
        stack.start()
        try:
            gateway = stack.urls["gateway"]
            token = new_session(gateway)
            account = DEV_STAFF_ACCOUNTS[0]
            staff = httpx.post(f"{gateway}/api/staff/login", timeout=10, json={
                "username": account.username, "password": "dev-staff-pass",
                "totp": pyotp.TOTP(account.totp_secret.get_secret_value()).now()}).json()["token"]

            calls = {"n": 0, "token": token}

            def headers_for(path: str) -> dict[str, str]:
                if path == "/api/staff/logout":  # would end the shared staff session
                    return {"Authorization": "Bearer not-a-staff-session"}
                if path.startswith("/api/staff"):
                    return {"Authorization": f"Bearer {staff}"}
                if path in ("/api/session/end", "/api/session/rotate"):  # would end the shared session
                    return {"Authorization": f"Bearer {new_session(gateway)}"}
                # A fresh session every 20 calls: one conversation of hundreds of turns makes each Rasa
                # turn slower (its tracker grows), which is not what this bench measures.
                calls["n"] += 1
                if calls["n"] % 20 == 0:
                    calls["token"] = new_session(gateway)
                return {"Authorization": f"Bearer {calls['token']}"}

            say(f"fuzz_http  {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores; "
                f"{args.examples} examples per operation and mode, {args.ws_examples} socket sessions per path")
            fuzz_operations(gateway, headers_for, tally, args.examples, say)
            alive = {"after HTTP operations": still_answers(gateway)}
            fuzz_websockets(gateway, token, tally, args.ws_examples, say)
            alive["after WebSockets"] = still_answers(gateway)
            fuzz_wechat_callback(gateway, tally, args.examples)
            say(f"   /wechat/callback: {dict(tally.by_endpoint['/wechat/callback'])}")
            alive["after the WeChat callback"] = still_answers(gateway)
            dead = stack.dead()
        finally:
            stack.stop()
    say("")
    say(f"inputs: {tally.total} in {time.perf_counter() - started:.0f} s; "
        f"answers by class: {dict(sum(tally.by_endpoint.values(), Counter()))}")
    say(f"5xx other than a deliberate 503 with Retry-After: {len(tally.failures)}")
    for failure in tally.failures[:20]:
        say(f"   {failure}")
    say(f"service answered a FAQ question: {alive}; processes that died: {dead or 'none'}")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if not tally.failures and all(alive.values()) and not dead else 1


if __name__ == "__main__":
    sys.exit(main())
