"""Several Rasa processes behind one gateway: a conversation stays with one of them, and a Rasa
that refuses connections (restarting) is skipped without losing the turn."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.rasa_client import RasaClient, RasaUnavailable

URLS = "http://rasa-a.test, http://rasa-b.test,http://rasa-c.test"


class Servers:
    def __init__(self, down: frozenset[str] = frozenset()):
        self.down = set(down)
        self.turns: list[tuple[str, str]] = []  # (host, sender)

    def handler(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/status":
            return httpx.Response(200, json={"model_file": "m.tar.gz"})
        sender = request.read().decode()
        self.turns.append((host, sender))
        return httpx.Response(200, json=[{"recipient_id": "x", "text": f"来自 {host}"}])


def client(servers: Servers) -> RasaClient:
    return RasaClient(URLS, "t", 2.0, transport=httpx.MockTransport(servers.handler))


def test_each_conversation_goes_to_one_rasa_and_conversations_spread_over_all():
    servers = Servers()
    rasa = client(servers)
    senders = [f"web-{i}" for i in range(60)]

    async def talk():
        for _ in range(3):
            for sender in senders:
                await rasa.send(sender, "你好")

    asyncio.run(talk())
    hosts_of: dict[str, set[str]] = {}
    for host, body in servers.turns:
        sender = next(s for s in senders if f'"{s}"' in body)
        hosts_of.setdefault(sender, set()).add(host)
    assert all(len(hosts) == 1 for hosts in hosts_of.values())
    counts = {h: sum(1 for host, _ in servers.turns if host == h) for h in ("rasa-a.test", "rasa-b.test", "rasa-c.test")}
    assert all(c >= 30 for c in counts.values()), counts  # 180 turns: none of the three left idle
    # Another gateway replica routes the same conversation to the same Rasa.
    assert [client(Servers()).home_of(s) for s in senders] == [rasa.home_of(s) for s in senders]


def test_a_rasa_refusing_connections_is_skipped_and_the_turn_answered_once():
    servers = Servers()
    rasa = client(servers)
    sender = "web-restarting-home"
    home = ["rasa-a.test", "rasa-b.test", "rasa-c.test"][rasa.home_of(sender)]
    servers.down.add(home)
    messages = asyncio.run(rasa.send(sender, "租房提取"))
    assert messages and home not in messages[0]["text"]
    assert len(servers.turns) == 1
    assert asyncio.run(rasa.ready())  # the gateway still serves turns


def test_every_rasa_down_is_unavailable_and_not_ready():
    servers = Servers(down=frozenset({"rasa-a.test", "rasa-b.test", "rasa-c.test"}))
    rasa = client(servers)
    with pytest.raises(RasaUnavailable):
        asyncio.run(rasa.send("web-1", "你好"))
    assert not asyncio.run(rasa.ready())


def test_a_timeout_is_not_sent_again_elsewhere():
    """A turn that timed out may have been processed: sending it to another Rasa could repeat it."""
    calls: list[str] = []

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        raise httpx.ReadTimeout("slow", request=request)

    rasa = RasaClient(URLS, "t", 2.0, transport=httpx.MockTransport(slow))
    with pytest.raises(RasaUnavailable):
        asyncio.run(rasa.send("web-2", "我要提取"))
    assert len(calls) == 1


def test_no_url_is_a_clear_configuration_error():
    with pytest.raises(ValueError, match="RASA_URL"):
        RasaClient(" , ", "t", 2.0)
