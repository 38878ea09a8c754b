"""Pushed messages: queued durably before WeChat is answered, then turned into bot turns.

The callback answers "success" only after the message is in a redis stream; a MsgId (or an
event's FromUserName+CreateTime) seen in the last WECHAT_SEEN_TTL_S is not queued again, so
WeChat's retries never make a second turn. `InboxWorker` drains the stream through a consumer
group (entries a dead process left pending are claimed after CLAIM_IDLE_MS), one openid's
messages in order, different openids side by side, and answers through the customer-service API.
A queued video handoff is sent as a mini-program card (gateway/wechat/video.py) and followed by
the relay (gateway/wechat/relay.py); "取消排队" and a chosen appointment slot are handled here.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import time
from typing import Awaitable, Callable, Optional

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from gateway import keys
from gateway.conversation import BOT_UNAVAILABLE, BotMessage, BotUnavailable, ChatInputError, is_identity_verified
from gateway.handoff import HandoffDesk, HandoffError, TicketState
from gateway.limits import Rate, RateLimited
from gateway.sessions import Session, SessionStore
from gateway.turns import count_turn
from gateway.wechat.api import UserUnreachable, WeChatApi, WeChatError, WeChatUnavailable
from gateway.wechat.codec import Incoming
from gateway.wechat.relay import CANCELLED_TEXT, HandoffRelay
from gateway.wechat.turns import OPENID_KIND, WeChatTurns
from gateway.wechat.video import (BOOK_PREFIX, BOOKED_TEXT, CANCEL_COMMANDS, CARD_FAILED_TEXT, CARD_THUMB, CARD_TITLE,
                                  for_push, video_page_path)

logger = logging.getLogger(__name__)
GROUP = "gateway"
CLAIM_IDLE_MS = 60_000
# How often a running worker looks for entries a dead process left: not only at start, because a
# gateway restarted after kill -9 starts before the dead one's entries are CLAIM_IDLE_MS old.
CLAIM_EVERY_S = 15.0
STREAM_MAX = 100_000
MAX_PARALLEL = 16
CHANNEL = "wxmsg"
MAX_TEXT = 600   # characters per customer-service message; longer replies go as several
WELCOME_TEXT = "您好，我是住房公积金智能助手安居，7×24小时为您服务。请直接用文字描述您的问题，例如“租房怎么提取公积金”。"
NOT_TEXT_TEXT = "抱歉，我暂时只能看懂文字消息。请用文字描述您的问题，例如“怎么查公积金余额”。"
CHOOSE_HINT = "（回复数字即可选择）"


class Inbox:
    def __init__(self, redis: Redis):
        self._r = redis

    async def enqueue(self, message: Incoming) -> bool:
        """True when queued, False for a retry of a message already queued. Raises RedisError."""
        seen = keys.wechat_seen(message.dedupe_id)
        if not await self._r.set(seen, "1", nx=True, ex=keys.WECHAT_SEEN_TTL_S):
            logger.info("wechat.inbox.duplicate type=%s", message.msg_type)
            return False
        try:
            await self._r.xadd(keys.wechat_inbox(), {"m": message.to_json()}, maxlen=STREAM_MAX, approximate=True)
        except RedisError:
            await self._r.delete(seen)   # not queued, so WeChat's retry must not be taken for a duplicate
            raise
        return True


def render(messages: list[BotMessage]) -> tuple[str, dict[str, str]]:
    """One turn's bot messages as one text; buttons become numbered choices -> their payloads."""
    parts: list[str] = []
    choices: dict[str, str] = {}
    for message in messages:
        if is_identity_verified(message):
            continue
        if message.text:
            parts.append(message.text)
        if message.image:
            parts.append(message.image)
        lines = []
        for button in message.buttons:
            number = str(len(choices) + 1)
            choices[number] = button.payload or button.title
            lines.append(f"{number}. {button.title}")
        if lines:
            parts.append("\n".join(lines) + "\n" + CHOOSE_HINT)
    return "\n\n".join(parts), choices


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    chunks = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return chunks + ([text] if text else [])


def openid_digest(openid: str) -> str:
    return hashlib.sha256(openid.encode()).hexdigest()[:32]


class InboxWorker:
    def __init__(self, redis: Redis, turns: WeChatTurns, store: SessionStore, api: WeChatApi, limiter, settings,
                 consumer: Optional[str] = None, desk: Optional[HandoffDesk] = None):
        self._r = redis
        self._turns, self._store, self._api = turns, store, api
        self._limiter, self._settings = limiter, settings
        self._desk = desk
        # Follows the video tickets of citizens queued from here (queue position, staff, the end).
        self.relay = HandoffRelay(redis, desk, self.send) if desk is not None else None
        self._consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._tails: dict[str, asyncio.Future] = {}
        self._in_flight: set[str] = set()   # dispatched, not yet acknowledged: never claimed twice
        self._slots = asyncio.Semaphore(MAX_PARALLEL)
        # Server-side sessions of pushed messages are named by a keyed digest of the openid, so the
        # gateway finds them again and a dump of redis (which holds only sha256(id)) gives nothing usable.
        self._session_key = hmac.new(settings.identity_assertion_key.get_secret_value().encode(),
                                     b"anju-wechat-push-session", hashlib.sha256).digest()

    async def run(self, block_ms: int = 2000) -> None:
        """Until cancelled; a redis outage is waited out."""
        while True:
            try:
                await self.ensure_group()
                await self._drain(block_ms)
            except asyncio.CancelledError:
                raise
            except RedisError as exc:
                logger.warning("wechat.inbox.redis_unavailable error=%s", type(exc).__name__)
                await asyncio.sleep(2)

    async def ensure_group(self) -> None:
        try:
            await self._r.xgroup_create(keys.wechat_inbox(), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _drain(self, block_ms: int) -> None:
        await self._r.xautoclaim(keys.wechat_inbox(), GROUP, self._consumer, CLAIM_IDLE_MS, "0-0", count=100)
        await self.process_held()
        next_claim = time.monotonic() + CLAIM_EVERY_S
        while True:
            await self.process_new(block_ms)
            if time.monotonic() >= next_claim:
                await self.claim_abandoned()
                next_claim = time.monotonic() + CLAIM_EVERY_S

    async def claim_abandoned(self) -> int:
        """Takes over entries another consumer received and never acknowledged for CLAIM_IDLE_MS (its
        process died) and handles them; returns how many. This worker's own in-flight ones are skipped."""
        claimed = (await self._r.xautoclaim(keys.wechat_inbox(), GROUP, self._consumer, CLAIM_IDLE_MS,
                                            "0-0", count=100))[1]
        taken = [(entry_id, fields) for entry_id, fields in claimed if fields and entry_id not in self._in_flight]
        for entry_id, fields in taken:
            logger.warning("wechat.inbox.claimed id=%s", entry_id)
            self._dispatch(entry_id, fields)
        return len(taken)

    async def process_held(self) -> None:
        """What this consumer already holds (after a restart or a claim), in order, to the end."""
        while True:
            batch = await self._r.xreadgroup(GROUP, self._consumer, {keys.wechat_inbox(): "0"}, count=50)
            entries = batch[0][1] if batch else []
            if not entries:
                return
            for entry_id, fields in entries:
                self._dispatch(entry_id, fields)
            await self.idle()

    async def process_new(self, block_ms: Optional[int]) -> int:
        """Dispatches the next new entries (waiting up to block_ms for some); returns how many."""
        batch = await self._r.xreadgroup(GROUP, self._consumer, {keys.wechat_inbox(): ">"}, count=50, block=block_ms)
        entries = batch[0][1] if batch else []
        for entry_id, fields in entries:
            self._dispatch(entry_id, fields)
        if not entries and block_ms:
            await asyncio.sleep(0.05)   # a server that does not block (fakeredis) must not spin the loop
        return len(entries)

    def _dispatch(self, entry_id: str, fields: dict) -> None:
        try:
            message = Incoming.from_json(fields.get("m", ""))
        except (ValueError, TypeError):
            logger.warning("wechat.inbox.unreadable id=%s", entry_id)
            asyncio.ensure_future(self._ack(entry_id))
            return
        previous = self._tails.get(message.openid)
        self._in_flight.add(entry_id)
        task = asyncio.ensure_future(self._in_order(previous, entry_id, message))
        self._tails[message.openid] = task
        task.add_done_callback(lambda t, o=message.openid: self._tails.pop(o, None) if self._tails.get(o) is t else None)

    async def idle(self) -> None:
        """Waits until every dispatched message is handled (tests and shutdown)."""
        while self._tails:
            await asyncio.gather(*list(self._tails.values()), return_exceptions=True)

    async def _in_order(self, previous: Optional[asyncio.Future], entry_id: str, message: Incoming) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        async with self._slots:
            try:
                await self.handle(message)
            except Exception:   # one bad message must not stop the worker; it is logged and dropped
                logger.exception("wechat.inbox.failed type=%s", message.msg_type)
            await self._ack(entry_id)

    async def _ack(self, entry_id: str) -> None:
        async with self._r.pipeline(transaction=True) as p:
            p.xack(keys.wechat_inbox(), GROUP, entry_id)
            p.xdel(keys.wechat_inbox(), entry_id)
            await p.execute()
        self._in_flight.discard(entry_id)

    async def handle(self, message: Incoming) -> None:
        await self._r.delete(keys.wechat_muted(openid_digest(message.openid)))  # they wrote: WeChat lets us answer
        if message.msg_type == "event":
            if message.event == "user_enter_tempsession":
                await self.send(message.openid, WELCOME_TEXT)
            return
        if message.msg_type != "text":
            await self.send(message.openid, NOT_TEXT_TEXT)
            return
        session = await self._session(message.openid)
        text, chosen = await self._chosen(session, message.content)
        if self._desk is not None:
            if chosen and text.startswith(BOOK_PREFIX):
                await self._book(session, message.openid, text[len(BOOK_PREFIX):])
                return
            if text.strip() in CANCEL_COMMANDS and await self._cancel_queue(session, message.openid):
                return
        try:
            await self._count(session)
            messages = await self._turns.turn(session, text)
        except RateLimited as exc:
            await self.send(message.openid, exc.message)
            return
        except ChatInputError as exc:
            await self.send(message.openid, exc.message)
            return
        except BotUnavailable:
            await self.send(message.openid, BOT_UNAVAILABLE)
            return
        shown, queued = for_push(messages)
        reply, choices = render(shown)
        await self._remember(session, choices)
        if reply:
            await self.send(message.openid, reply)
        for ticket in queued:
            await self._video_card(message.openid, ticket)
            if self.relay is not None:
                await self.relay.follow(str(ticket["ticket_id"]), message.openid, int(ticket.get("position") or 0))

    async def _count(self, session: Session) -> None:
        await count_turn(self._limiter, self._settings, session, None)

    async def _session(self, openid: str) -> Session:
        session_id = hmac.new(self._session_key, openid.encode(), hashlib.sha256).hexdigest()
        session = await self._store.get(session_id)
        if session is None:
            session = await self._store.create(CHANNEL, identity_kind=OPENID_KIND, identity=openid, session_id=session_id)
        return session

    async def _chosen(self, session: Session, text: str) -> tuple[str, bool]:
        """A reply of just a number picks the button of that number from the last answer: (payload, True)."""
        number = text.strip()
        if number.isdigit() and len(number) <= 2:
            payload = await self._r.hget(keys.wechat_choices(session.sender_id), number)
            if payload:
                return payload, True
        return text, False

    async def _book(self, session: Session, openid: str, slot: str) -> None:
        """The citizen picked one of the appointment slots offered instead of the queue."""
        try:
            await self._limiter.hit("booking_session", session.sender_id, Rate.parse(self._settings.rate_booking_session))
            label = await self._desk.appointments.book(session.sender_id, slot)
        except (RateLimited, HandoffError) as exc:
            await self.send(openid, exc.message)
            return
        await self._remember(session, {})
        await self.send(openid, BOOKED_TEXT.format(label=label))

    async def _cancel_queue(self, session: Session, openid: str) -> bool:
        """Leaves the queue on “取消排队” while waiting for staff (the relay says so); else the bot answers."""
        ticket = await self._desk.open_ticket(session.sender_id)
        if ticket is None or ticket.state != TicketState.WAITING:
            return False
        await self._desk.cancel(ticket.id, ticket.key)
        if self.relay is None or not await self._r.exists(keys.wechat_relay(ticket.id)):
            await self.send(openid, CANCELLED_TEXT)
        return True

    async def _video_card(self, openid: str, ticket: dict) -> None:
        """The card that opens the mini-program's video page for this ticket; a text if it cannot be sent."""
        page = video_page_path(str(ticket["ticket_id"]), str(ticket["key"]))
        outcome = await self._deliver(openid, lambda: self._api.send_page_card(openid, CARD_TITLE, page,
                                                                               CARD_THUMB.read_bytes()))
        if outcome == "failed":
            await self.send(openid, CARD_FAILED_TEXT)

    async def _remember(self, session: Session, choices: dict[str, str]) -> None:
        key = keys.wechat_choices(session.sender_id)
        async with self._r.pipeline(transaction=True) as p:
            p.delete(key)
            if choices:
                p.hset(key, mapping=choices)
                p.expire(key, keys.WECHAT_CHOICES_TTL_S)
            await p.execute()

    async def send(self, openid: str, text: str) -> None:
        """A text through the customer-service API, in parts if long; nothing while WeChat refuses this user."""
        parts = split_text(text)
        for chunk in parts:
            if await self._deliver(openid, lambda c=chunk: self._api.send_text(openid, c)) != "sent":
                return
        logger.info("wechat.send.ok parts=%d", len(parts))

    async def _deliver(self, openid: str, call: Callable[[], Awaitable[None]]) -> str:
        """Returns sent, muted (45015/45047 now or earlier: wait until they write again) or failed."""
        muted = keys.wechat_muted(openid_digest(openid))
        if await self._r.exists(muted):
            logger.info("wechat.send.skipped reason=muted")
            return "muted"
        try:
            await call()
        except UserUnreachable as exc:
            await self._r.set(muted, str(exc.errcode), ex=keys.WECHAT_MUTED_TTL_S)
            logger.warning("wechat.send.stopped errcode=%s", exc.errcode)
            return "muted"
        except (WeChatError, WeChatUnavailable) as exc:
            logger.warning("wechat.send.failed error=%s", exc)
            return "failed"
        return "sent"
