"""Audit records reach the core, or wait in redis and reach it later, once each."""
import asyncio
import datetime as dt
import json

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway import keys
from gateway.audit_client import AuditClient, AuditRejected, AuditUnavailable

AT = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


class FakeCore:
    """POST /audit/records like the core, deduplicating on idempotency_key; `mode` simulates outages."""

    def __init__(self):
        self.mode = "up"  # up | down | 503 | 422
        self.records = {}
        self.requests = []
        self.scripted = []  # statuses to answer first, in order, before `mode` applies

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.scripted:
            return httpx.Response(self.scripted.pop(0), json={"seq": 7})
        if self.mode == "down":
            raise httpx.ConnectError("connection refused")
        if self.mode in ("503", "422"):
            return httpx.Response(int(self.mode), json={"detail": self.mode})
        body = json.loads(request.content)
        self.records.setdefault(body["idempotency_key"], {**body, "seq": len(self.records) + 1})
        return httpx.Response(201, json={"seq": self.records[body["idempotency_key"]]["seq"]})


@pytest.fixture
def core():
    return FakeCore()


@pytest.fixture
async def audit(redis, core):
    client = AuditClient(redis, "http://core.test", "core-secret", 2.0,
                         transport=httpx.MockTransport(core.handler), clock=lambda: AT)
    yield client
    await client.aclose()


async def test_a_record_goes_to_the_core_with_the_token_time_and_a_key(audit, core):
    assert await audit.record("staff:zhang", "video.recording", "ticket t-1", "sha256=ab") == "core:1"
    [request] = core.requests
    assert request.url == "http://core.test/audit/records"
    assert request.headers["authorization"] == "Bearer core-secret"
    body = json.loads(request.content)
    assert body["at"] == "2026-05-04T01:30:00.000000+00:00"
    assert len(body["idempotency_key"]) == 32 and int(body["idempotency_key"], 16) >= 0
    assert {k: body[k] for k in ("actor", "action", "subject", "outcome")} == \
        {"actor": "staff:zhang", "action": "video.recording", "subject": "ticket t-1", "outcome": "sha256=ab"}


async def test_fields_are_cut_to_the_cores_lengths(audit, core):
    await audit.record("a" * 100, "b" * 100, "c" * 100, "d" * 300)
    body = json.loads(core.requests[0].content)
    assert [len(body[k]) for k in ("actor", "action", "subject", "outcome")] == [80, 80, 80, 200]


@pytest.mark.parametrize("mode", ["down", "503"])
async def test_an_unreachable_or_failing_core_parks_the_record(audit, core, redis, mode):
    core.mode = mode
    entry_id = await audit.record("staff:zhang", "login", "-", "ok")
    [(parked_id, fields)] = await redis.xrange(keys.audit_parked())
    assert parked_id == entry_id
    assert fields["action"] == "login" and fields["at"] == "2026-05-04T01:30:00.000000+00:00"


async def test_a_record_the_core_refuses_for_good_raises(audit, core, redis):
    core.mode = "422"
    with pytest.raises(AuditRejected, match="422"):
        await audit.record("staff:zhang", "login", "-", "ok")
    assert await redis.xlen(keys.audit_parked()) == 0


async def test_with_core_and_redis_both_down_the_caller_is_told(audit, core, redis, monkeypatch):
    core.mode = "down"

    async def redis_down(*args, **kwargs):
        raise RedisConnectionError("redis down")

    monkeypatch.setattr(redis, "xadd", redis_down)
    with pytest.raises(AuditUnavailable):
        await audit.record("staff:zhang", "login", "-", "ok")


async def test_drain_sends_oldest_first_with_the_original_time_and_key(audit, core, redis):
    core.mode = "down"
    for action in ("first", "second", "third"):
        await audit.record("staff:zhang", action, "-", "ok")
    parked = [fields for _, fields in await redis.xrange(keys.audit_parked())]
    core.mode = "up"
    assert await audit.drain() == 3
    sent = [json.loads(r.content) for r in core.requests[3:]]
    assert [s["action"] for s in sent] == ["first", "second", "third"]
    assert [(s["at"], s["idempotency_key"]) for s in sent] == [(p["at"], p["idempotency_key"]) for p in parked]
    assert await redis.xlen(keys.audit_parked()) == 0


async def test_drain_stops_at_the_first_failure_and_keeps_the_rest(audit, core, redis):
    core.mode = "down"
    for action in ("first", "second"):
        await audit.record("staff:zhang", action, "-", "ok")
    core.mode = "503"
    assert await audit.drain() == 0
    assert len(core.requests) == 3  # two records, then one try of the oldest
    assert await redis.xlen(keys.audit_parked()) == 2


async def test_a_crash_after_the_core_took_a_record_still_gives_one_record(audit, core, redis, monkeypatch):
    core.mode = "down"
    await audit.record("staff:zhang", "login", "-", "ok")
    core.mode = "up"

    async def crash(*args):
        raise RedisConnectionError("gone before the delete")

    real_xdel = redis.xdel
    monkeypatch.setattr(redis, "xdel", crash)
    with pytest.raises(RedisConnectionError):
        await audit.drain()
    monkeypatch.setattr(redis, "xdel", real_xdel)
    assert await audit.drain() == 1
    assert len(core.requests) == 3 and len(core.records) == 1


async def test_a_parked_record_refused_for_good_is_set_aside_and_the_rest_go(audit, core, redis):
    core.mode = "down"
    await audit.record("staff:zhang", "bad", "-", "ok")
    await audit.record("staff:zhang", "good", "-", "ok")
    core.mode, core.scripted = "up", [422, 201]
    assert await audit.drain() == 1
    assert await redis.xlen(keys.audit_parked()) == 0
    [(_, rejected)] = await redis.xrange(keys.audit_rejected())
    assert rejected["action"] == "bad" and rejected["status"] == "422"


async def test_the_drainer_outlives_redis_and_core_outages(audit, core, redis, monkeypatch):
    core.mode = "down"
    await audit.record("staff:zhang", "login", "-", "ok")
    real_xrange, calls = redis.xrange, []

    async def flaky_xrange(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RedisConnectionError("redis down")
        if len(calls) == 3:
            core.mode = "up"
        return await real_xrange(*args, **kwargs)

    monkeypatch.setattr(redis, "xrange", flaky_xrange)
    drainer = asyncio.create_task(audit.run_drainer(0.01))
    for _ in range(200):
        if not await redis.xlen(keys.audit_parked()):
            break
        await asyncio.sleep(0.01)
    drainer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drainer
    assert await redis.xlen(keys.audit_parked()) == 0 and len(core.records) == 1
