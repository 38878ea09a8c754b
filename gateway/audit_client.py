"""Audit records for the core's hash chain (`POST /audit/records`), parked in redis while the
core cannot take them.

A record gets its time (`at`, UTC) and a random idempotency key when it is made, and keeps both
when it is parked and re-sent, so the chain shows when it happened and a record sent twice
(a crash between the core's answer and the stream delete, or two drainers) lands once. The
parked stream never expires: audit records are not temporary. Subjects and outcomes must be
masked by the caller; this client only cuts fields to the core's lengths. Redis must be a
client with decode_responses=True, as everywhere in the gateway.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from typing import Callable, Optional

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import keys
from gateway.internal_http import internal_client

logger = logging.getLogger(__name__)
LIMITS = {"actor": 80, "action": 80, "subject": 80, "outcome": 200}
DRAIN_BATCH = 100
# Answers that may change by themselves or once the operator fixes the config: keep the record.
RETRYABLE_4XX = {401, 403, 404, 408, 425, 429}


class AuditError(Exception):
    """Base of the audit client's errors."""


class AuditUnavailable(AuditError):
    """Neither the core nor redis took the record: the caller decides whether to go on."""


class AuditRejected(AuditError):
    """The core refused the record for good (a 4xx such as 422): a bug in what was sent."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _retryable(response: httpx.Response) -> bool:
    return response.status_code >= 500 or response.status_code in RETRYABLE_4XX


def _seq(response: httpx.Response) -> str:
    try:
        return str(response.json()["seq"])
    except (ValueError, KeyError, TypeError):
        return "?"  # taken all the same: the status says so


class AuditClient:
    def __init__(self, redis: Redis, core_url: str, core_token: str, timeout_s: float, *,
                 transport: Optional[httpx.AsyncBaseTransport] = None, clock: Callable[[], dt.datetime] = _utc_now):
        self._r = redis
        self._clock = clock
        self._http = internal_client(base_url=core_url, timeout=timeout_s, transport=transport,
                                       headers={"Authorization": f"Bearer {core_token}"})

    async def aclose(self) -> None:
        await self._http.aclose()

    def _new_record(self, actor: str, action: str, subject: str, outcome: str) -> dict[str, str]:
        fields = {"actor": actor, "action": action, "subject": subject, "outcome": outcome}
        record = {name: (value or "-")[:LIMITS[name]] for name, value in fields.items()}  # the core refuses ""
        record["at"] = self._clock().astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
        record["idempotency_key"] = secrets.token_hex(16)
        return record

    async def _post(self, record: dict[str, str]) -> httpx.Response:
        return await self._http.post("/audit/records", json=record)

    async def record(self, actor: str, action: str, subject: str, outcome: str) -> str:
        """Returns "core:<seq>" when the core took the record, else the id of its parked stream entry."""
        record = self._new_record(actor, action, subject, outcome)
        try:
            response = await self._post(record)
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        else:
            if response.is_success:
                return f"core:{_seq(response)}"
            if not _retryable(response):
                logger.error("audit.record.rejected action=%s status=%s", record["action"], response.status_code)
                raise AuditRejected(f"the core refused the audit record with {response.status_code}, expected 201")
            reason = f"http_{response.status_code}"
        try:
            entry_id = await self._r.xadd(keys.audit_parked(), record)
        except (RedisError, OSError) as exc:  # redis down too: nothing left to keep it in
            logger.error("audit.record.lost action=%s core=%s redis=%s", record["action"], reason, type(exc).__name__)
            raise AuditUnavailable("neither the core nor redis took the audit record") from exc
        logger.warning("audit.record.parked id=%s action=%s core=%s", entry_id, record["action"], reason)
        return entry_id

    async def drain(self) -> int:
        """Sends parked records oldest first and deletes each once the core took it; stops at the
        first failure and returns how many went. Records refused for good move to audit_rejected()."""
        sent = 0
        while True:
            entries = await self._r.xrange(keys.audit_parked(), "-", "+", count=DRAIN_BATCH)
            for entry_id, record in entries:
                try:
                    response = await self._post(record)
                except httpx.HTTPError as exc:
                    logger.warning("audit.drain.stopped id=%s error=%s", entry_id, type(exc).__name__)
                    return sent
                if response.is_success:
                    await self._r.xdel(keys.audit_parked(), entry_id)
                    sent += 1
                elif _retryable(response):
                    logger.warning("audit.drain.stopped id=%s status=%s", entry_id, response.status_code)
                    return sent
                else:
                    await self._set_aside(entry_id, record, response.status_code)
            if len(entries) < DRAIN_BATCH:
                if sent:
                    logger.info("audit.drain.done sent=%s", sent)
                return sent

    async def _set_aside(self, entry_id: str, record: dict[str, str], status: int) -> None:
        """One bad record must not block every later one."""
        async with self._r.pipeline(transaction=True) as p:
            p.xadd(keys.audit_rejected(), {**record, "status": str(status), "parked_id": entry_id})
            p.xdel(keys.audit_parked(), entry_id)
            await p.execute()
        logger.error("audit.drain.rejected id=%s status=%s", entry_id, status)

    async def run_drainer(self, interval_s: float) -> None:
        """Drains every interval_s until cancelled; an outage of redis or the core only delays it."""
        while True:
            try:
                await self.drain()
            except Exception:  # the loop must outlive any outage; the next round retries
                logger.exception("audit.drain.failed")
            if asyncio.current_task().cancelling():
                # Python 3.11's wait_for (used by redis clients) can swallow a cancel that lands as
                # the reply arrives; the request is still recorded, so shutdown does not hang.
                raise asyncio.CancelledError
            await asyncio.sleep(interval_s)
