"""Two gateways and two Rasa processes behind one port, on one redis (issue 20, part 7).

Gateway A (an extra gateway, RASA_URL → an extra Rasa) and gateway B (the session stack's own,
→ its own Rasa) share redis (sessions, verified state, vault, Rasa's tracker and lock stores), the
core and the action server. A small proxy in this file gives every HTTP request to a gateway
without looking at the session: to the one the test names in the X-Test-Route header (the switch
the test flips; the header is dropped before forwarding), else round-robin; a gateway that refuses
the connection is skipped, as nginx's `proxy_next_upstream error` does. Everything else (the
bearer token, the cookie, Set-Cookie, the body) passes unchanged, one connection per request.
"""
from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from typing import Optional
from urllib.parse import urlsplit

import httpx
import pytest

from citizens import sender_id_of, texts

pytestmark = pytest.mark.integration

ROUTE = "X-Test-Route"
RENTER = ("320402199403120454", "韦娜伟", "320***********0454")  # fund/DEMO_PERSONS.md #1, 常州
MAAS = ("340503198005166634", "柳达", "340***********6634")    # #10, 马鞍山 (#2 is the security test's: 5 codes per 15 min)
STARTUP: dict[str, float] = {}


class Proxy:
    """One listening port; a thread runs its event loop so that sync and async clients can use it."""

    def __init__(self, backends: dict[str, int]):
        self.backends = backends  # label -> port on 127.0.0.1
        self._turns = itertools.cycle(list(backends))
        self.served: list[tuple[str, str, str]] = []  # (path, wanted, served) per forwarded request
        self._loop = asyncio.new_event_loop()
        self._server: Optional[asyncio.base_events.Server] = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> str:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self._loop).result(10)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        async def close():
            self._server.close()
            await self._server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[:-2]
            headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
            fields = {k.lower(): v for k, v in headers}
            assert "chunked" not in fields.get("transfer-encoding", ""), "the proxy forwards sized bodies only"
            body = await reader.readexactly(int(fields.get("content-length", "0")))
            wanted = fields.get(ROUTE.lower()) or next(self._turns)
            kept = [f"{k}: {v}" for k, v in headers if k.lower() not in (ROUTE.lower(), "connection")]
            request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1") + body
            for label in [wanted] + [b for b in self.backends if b != wanted]:
                try:
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backends[label])
                except OSError:
                    continue  # down: the next gateway takes it
                self.served.append((lines[0].split()[1], wanted, label))  # before the client can see a reply
                try:
                    up_writer.write(request)
                    await up_writer.drain()
                    while chunk := await up_reader.read(65536):
                        writer.write(chunk)
                        await writer.drain()
                finally:
                    up_writer.close()
                return
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def front(stack):
    """Starts rasa-2 and gateway A (→ rasa-2) next to the stack's own, and the proxy before both."""
    rasa2 = stack.add_replica("rasa")
    gateway_a = stack.add_replica("gateway", env={"RASA_URL": stack.urls[rasa2]})
    try:
        stack.launch(rasa2)
        stack.launch(gateway_a)  # serves FAQ answers from the knowledge base until rasa-2 is up
        stack.wait_healthy(gateway_a)
        STARTUP["gateway"] = time.monotonic() - stack.services[gateway_a].launched_at
        stack.wait_healthy(rasa2)  # health endpoint (/status names the model), then one warm-up parse
        STARTUP["rasa"] = time.monotonic() - stack.services[rasa2].launched_at
        print(f"\nextra processes healthy after: gateway {STARTUP['gateway']:.1f}s, rasa {STARTUP['rasa']:.1f}s")
        ready = httpx.get(f"{stack.urls[gateway_a]}/readyz", timeout=10)
        assert ready.status_code == 200 and set(ready.json()["checks"].values()) == {"ok"}, ready.text
        proxy = Proxy({"A": urlsplit(stack.urls[gateway_a]).port, "B": stack.ports.gateway})
        url = proxy.start()
        try:
            yield {"url": url, "proxy": proxy, "A": gateway_a, "rasa2": rasa2}
        finally:
            proxy.stop()
    finally:
        for name in (gateway_a, rasa2):
            stack.drop_replica(name)


def chat(client: httpx.Client, to: str, text: str) -> str:
    """One turn of a cookie client, through the gateway `to`."""
    resp = client.post("/api/chat", json={"text": text}, headers={ROUTE: to}, timeout=90)
    assert resp.status_code == 200, resp.text
    return texts(resp.json()["messages"])


def latest_code(stack) -> str:
    resp = httpx.get(f"{stack.urls['core']}/dev/outbox", params={"limit": 1}, timeout=10,
                     headers={"Authorization": f"Bearer {stack.core_token}"})
    return resp.json()["messages"][0]["code"]


def user_texts(stack, rasa: str, sender_id: str) -> list[str]:
    resp = httpx.get(f"{stack.urls[rasa]}/conversations/{sender_id}/tracker",
                     params={"token": stack.rasa_token}, timeout=10)
    assert resp.status_code == 200, resp.text
    return [e.get("text") for e in resp.json()["events"] if e["event"] == "user"]


def assert_in_order(got: list[str], expected: list[str]) -> None:
    """Every user message, in the order sent; a pattern stands for a token (ID number, name)."""
    assert len(got) == len(expected), (got, expected)
    for text, pattern in zip(got, expected):
        assert re.fullmatch(pattern, text or ""), (got, expected)


def served_by(proxy: Proxy, since: int) -> list[tuple[str, str]]:
    return [(wanted, served) for path, wanted, served in proxy.served[since:] if path == "/api/chat"]


def test_a_conversation_alternating_between_gateways_keeps_its_context_and_order(stack, front):
    """The widget's way (a cookie, rotated on verification), every turn on the other gateway."""
    proxy = front["proxy"]
    with httpx.Client(base_url=front["url"]) as widget:
        assert widget.post("/api/session/web", headers={ROUTE: "B"}, timeout=10).status_code == 200
        first_cookie = widget.cookies["anju_session"]
        sender_id = sender_id_of(stack, first_cookie)
        since = len(proxy.served)

        assert "连续足额缴存" in chat(widget, "A", "租房怎么提取公积金")
        # Only the remembered topic, written by the other Rasa, makes this a question about renting.
        answer = chat(widget, "B", "常州呢")
        assert "【常州】" in answer and "租房" in answer
        assert "身份证" in chat(widget, "A", "帮我查一下我的公积金余额")
        assert "姓名" in chat(widget, "B", RENTER[0])
        assert "验证码" in chat(widget, "A", RENTER[1])
        code = latest_code(stack)
        reply = chat(widget, "B", code)
        assert "身份验证成功" in reply and "余额" in reply and RENTER[2] in reply and RENTER[0] not in reply
        # B rotated the session; A must take the new cookie and refuse nothing.
        assert widget.cookies["anju_session"] != first_cookie
        reply = chat(widget, "A", "查余额")
        assert "余额" in reply and RENTER[2] in reply and "身份证" not in reply
        assert "身份证" not in chat(widget, "B", "我的申请办到哪一步了")

    assert served_by(proxy, since) == [(g, g) for g in "ABABABAB"]
    sent = ["租房怎么提取公积金", "常州呢", "帮我查一下我的公积金余额", r"pii_id_\w+", r"pii_nm_\w+",
            re.escape(code), "查余额", "我的申请办到哪一步了"]
    # The same tracker from either Rasa: both read the one redis.
    for rasa in ("rasa", front["rasa2"]):
        assert_in_order(user_texts(stack, rasa, sender_id), sent)


CONVERSATIONS = {
    "x": [("租房怎么提取公积金", ["连续足额缴存"]), ("常州呢", ["【常州】", "租房"]),
          ("现在公积金贷款利率是多少", ["2.60%", "3.075%"]), ("今天天气怎么样", ["不属于住房公积金业务"]),
          ("公積金貸款利率是多少", ["2.60%"]), ("租房可以提取公积金吗", ["连续足额缴存"])],
    "y": [("你好", ["公积金"]), ("公积金贷款利率是多少", ["2.60%"]), ("租房可以提取公积金吗", ["连续足额缴存"]),
          ("常州呢", ["【常州】", "租房"]), ("今天天气怎么样", ["不属于住房公积金业务"]),
          ("现在公积金贷款利率是多少", ["3.075%"])],
}


def test_two_citizens_at_once_each_switching_gateways_keep_their_order(stack, front):
    proxy = front["proxy"]
    since = len(proxy.served)

    async def citizen(label: str, first: str) -> tuple[str, list[str]]:
        async with httpx.AsyncClient(base_url=front["url"], timeout=90) as http:
            token = (await http.post("/api/session")).json()["token"]
            sender_id = sender_id_of(stack, token)
            routes = itertools.cycle([first, "B" if first == "A" else "A"])
            replies = []
            for text, _ in CONVERSATIONS[label]:
                resp = await http.post("/api/chat", json={"text": text}, headers={
                    "Authorization": f"Bearer {token}", ROUTE: next(routes)})
                assert resp.status_code == 200, resp.text
                replies.append(texts(resp.json()["messages"]))
            return sender_id, replies

    async def both():
        return await asyncio.gather(citizen("x", "A"), citizen("y", "B"))

    (x_sender, x_replies), (y_sender, y_replies) = asyncio.run(both())
    for label, replies in (("x", x_replies), ("y", y_replies)):
        for (text, wanted), reply in zip(CONVERSATIONS[label], replies):
            assert all(w in reply for w in wanted), (label, text, reply)
    for label, sender_id, rasa in (("x", x_sender, front["rasa2"]), ("y", y_sender, "rasa")):
        assert user_texts(stack, rasa, sender_id) == [text for text, _ in CONVERSATIONS[label]]
    served = served_by(proxy, since)
    assert len(served) == 12 and served.count(("A", "A")) == 6 and served.count(("B", "B")) == 6


def test_a_gateway_killed_mid_conversation_the_other_carries_on_verified(stack, front):
    proxy = front["proxy"]
    with httpx.Client(base_url=front["url"], timeout=90) as api:
        token = api.post("/api/session", headers={ROUTE: "A"}).json()["token"]
        sender_id = sender_id_of(stack, token)
        bearer = lambda: {"Authorization": f"Bearer {token}"}  # noqa: E731

        def say(to: str, text: str) -> str:
            nonlocal token
            resp = api.post("/api/chat", json={"text": text}, headers={**bearer(), ROUTE: to})
            assert resp.status_code == 200, resp.text
            token = resp.json().get("token") or token  # rotated on verification
            return texts(resp.json()["messages"])

        assert "身份证" in say("A", "我想查公积金余额")
        assert "姓名" in say("B", MAAS[0])
        assert "验证码" in say("A", MAAS[1])
        before = token
        reply = say("B", latest_code(stack))
        assert "身份验证成功" in reply and MAAS[2] in reply and token != before

        stack.kill_one(front["A"])  # as a crash would; the proxy is not told
        since = len(proxy.served)
        reply = say("A", "查余额")
        assert "余额" in reply and MAAS[2] in reply and "身份证" not in reply
        assert "身份证" not in say("A", "我的申请办到哪一步了")
        answer = say("B", "租房可以提取公积金吗")
        assert "连续足额缴存" in answer
        assert "【马鞍山】" in say("A", "马鞍山呢")
        assert served_by(proxy, since) == [("A", "B"), ("A", "B"), ("B", "B"), ("A", "B")]

    sent = ["我想查公积金余额", r"pii_id_\w+", r"pii_nm_\w+", r"\d{6}", "查余额", "我的申请办到哪一步了",
            "租房可以提取公积金吗", "马鞍山呢"]
    assert_in_order(user_texts(stack, "rasa", sender_id), sent)
    assert user_texts(stack, front["rasa2"], sender_id) == user_texts(stack, "rasa", sender_id)
