"""A hotline caller's place in the staff queue (issue 18 part 4): what the web page shows, said on the phone.

The desk (gateway.handoff) queues a voice ticket like any other; this follows it for the call:
- the queued message is spoken text that fits a phone (no page to look at), with the position;
- the position is said again when it changed, at most once per `announce_every_s`;
- while the ticket waits, the caller's place is kept (the desk's presence key, as a web page keeps it);
- `#` on the keypad cancels the queue (the desk's cancel path, as the web's 取消排队 button);
- when staff accept, the caller hears the recording notice: key 1 agrees, and the call's audio is bridged
  to the staff console's audio-only WebRTC session (gateway/voice/staff_bridge.py; the bot stays silent
  meanwhile, staff's typed messages are shown, not spoken over them); key 2 keeps it to text: staff's
  messages are read out and what the caller says reaches staff as text (Conversation routes a
  handed-off sender's turns to them). Staff ending the session returns the caller to the bot;
- out of staff hours (or when the wait is too long) the booking slots become a keypad menu; the caller
  picks one and keys a call-back number (a mainland mobile, 11 digits and #), which is kept with the
  appointment for staff (`AppointmentBook.book_callback`) and never reaches the bot or a log in clear;
- the call ending in any way (hang-up, socket closed, silence, maximum length) hangs the ticket up:
  a waiting one is cancelled, an active one ends and staff are told (`HandoffDesk.hang_up`).
"""
from __future__ import annotations

import logging
import math
import re
import time
from typing import Any, Awaitable, Callable, Optional

from gateway.conversation import BotMessage, Button
from gateway.handoff import HandoffDesk, HandoffError, TicketState
from gateway.privacy import mask_phone
from gateway.voice.staff_bridge import StaffBridge

logger = logging.getLogger(__name__)

CANCEL_KEY = "#"
QUEUED = "已为您排队转接人工，{queue}请不要挂机；按井号键可以取消排队。"
POSITION = "排队位置有更新：{queue}请继续等候；按井号键可以取消排队。"
STAFF_JOINED = "工作人员已接入。请直接说话，您说的话会转给工作人员，工作人员的回复会为您读出来。"
STAFF_JOINED_ASK = ("工作人员已接入。为保障服务质量，本次通话将全程录音，录音按规定保存并严格保密。"
                    "同意录音并和工作人员通话，请按1；不同意，请按2，工作人员将用文字回复，由系统为您读出来。")
CONNECTING = "好的，正在为您接通工作人员，请稍候。"
TEXT_ONLY = "好的，不录音。请直接说话，您说的话会转给工作人员，工作人员的回复会为您读出来。"
CONSENT_KEYS = {"1": True, "2": False}
BRIDGE_RETRY_S = 5.0
CANCELLED = "已为您取消排队。您可以继续提问，需要时按0转人工。"
QUEUE_ENDED = "本次人工排队已结束。您可以继续提问，需要时按0转人工。"
SESSION_ENDED = "人工服务已结束。您可以继续提问，需要时按0转人工。"
BOOK_PREFIX = "voice-book:"  # a keypad choice of a call-back slot: handled here, never sent to the bot
BOOK_CLOSED = "现在不是人工服务时间，人工服务时间为{hours}。可以预约工作人员在以下时间给您回电。"
BOOK_BUSY = "目前排队人数较多，等待时间较长。可以预约工作人员在以下时间给您回电。"
NO_SLOTS = "近期的回电预约已满，请在人工服务时间{hours}再来电，或拨打 12329 服务热线。"
ASK_NUMBER = "您选择了{label}。请输入您的11位手机号码，以井号键结束；工作人员会拨打这个号码给您回电。"
BAD_NUMBER = "号码不正确，请输入以1开头的11位手机号码，以井号键结束。"
BOOKED = "已为您预约{label}回电，工作人员会拨打尾号{last4}的手机号码。感谢您的来电，您也可以继续提问。"
GIVE_UP_NUMBER = "没有收到正确的手机号码，本次回电预约没有成功。需要时请按0重新预约。"
MOBILE = re.compile(r"1[3-9]\d{9}")
NUMBER_TRIES = 3


def queue_words(position: int, eta_s: int) -> str:
    ahead = max(0, position - 1)
    if ahead == 0:
        return "您已排在第一位，工作人员空闲后马上为您接听，"
    minutes = max(1, math.ceil(eta_s / 60)) if eta_s else 1
    return f"您前面还有{ahead}位，预计等待约{minutes}分钟，"


class CallTransfer:
    """One call's ticket, if any. `state` is "" (none), "waiting" or "active"."""

    def __init__(self, desk: HandoffDesk, sender_id: str = "", announce_every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, media: Any = None):
        """media: the handoff's media service (`answer`, `close`); with it, staff talk with the caller by
        voice (gateway/voice/staff_bridge.py) once the caller agrees to the recording."""
        self._desk = desk
        self._media = media
        self.bridge: Optional[StaffBridge] = None
        self._send_pcm: Optional[Callable[[bytes], Awaitable[None]]] = None
        self._rate = 8000
        self._room = ""
        self._bridge_retry_at = 0.0
        self._sender_id = sender_id
        self._offered: dict[str, str] = {}  # slot -> label, from the last booking menu
        self._slot = ""  # the chosen slot while the caller keys the number
        self._asked = False  # the recording question is open (keys 1/2 answer it)
        self._tries = 0
        self._announce_every_s = announce_every_s
        self._clock = clock
        self.ticket_id = ""
        self._key = ""
        self.state = ""
        self._told: Optional[int] = None
        self._told_at = 0.0
        self._after = "0"

    @property
    def holding(self) -> bool:
        """The caller is waiting for or talking with staff: not silent on the bot, so no silence timeout."""
        return self.state in ("waiting", "active")

    def cancels(self, keys: str) -> bool:
        return self.state == "waiting" and keys == CANCEL_KEY

    def attach(self, rate: int, send_pcm: Callable[[bytes], Awaitable[None]]) -> None:
        """The call's rate and how staff's audio reaches the caller."""
        self._rate, self._send_pcm = rate, send_pcm

    @property
    def bridged(self) -> bool:
        return self.bridge is not None and self.bridge.live

    def answers_consent(self, keys: str) -> bool:
        return self.state == "active" and self._asked and keys in CONSENT_KEYS

    async def consent(self, keys: str) -> str:
        agree = await self._desk.record_consent(self.ticket_id, CONSENT_KEYS[keys])
        self._asked = False
        logger.info("voice.transfer.consent ticket=%s agree=%s", self.ticket_id, agree)
        return CONNECTING if agree else TEXT_ONLY

    async def adapt(self, messages: list[BotMessage]) -> list[BotMessage]:
        """The bot's reply as the phone says it: a queued handoff in spoken words, and followed from now."""
        out = []
        for message in messages:
            custom = message.custom or {}
            if custom.get("type") == "handoff_queued" and custom.get("ticket_id") and custom.get("key"):
                position, eta_s = int(custom.get("position") or 0), int(custom.get("eta_s") or 0)
                self._follow(str(custom["ticket_id"]), str(custom["key"]), position)
                message = message.model_copy(update={"text": QUEUED.format(queue=queue_words(position, eta_s))})
            elif custom.get("type") == "handoff_booking":
                message = self._booking_menu(custom)
            out.append(message)
        return out

    def _booking_menu(self, custom: dict) -> BotMessage:
        """The slots as a keypad menu (the call says "请按键选择：按1，…" after the text)."""
        hours = self._desk.appointments.hours_text()
        slots = [s for s in custom.get("slots") or [] if s.get("slot") and s.get("label")]
        self._offered = {s["slot"]: s["label"] for s in slots}
        if not slots:
            return BotMessage(text=NO_SLOTS.format(hours=hours), custom=custom)
        text = BOOK_CLOSED.format(hours=hours) if custom.get("reason") == "closed" else BOOK_BUSY
        buttons = [Button(title=f"{s['label']}回电", payload=BOOK_PREFIX + s["slot"]) for s in slots]
        return BotMessage(text=text, buttons=buttons, custom=custom)

    async def intercept(self, text: str) -> Optional[list[BotMessage]]:
        """A booking choice or the call-back number: answered here; anything else (None) goes to the bot."""
        if text.startswith(BOOK_PREFIX):
            slot = text[len(BOOK_PREFIX):]
            if slot not in self._offered:
                return [BotMessage(text="该时段不可预约，请重新选择。")]
            self._slot, self._tries = slot, 0
            return [BotMessage(text=ASK_NUMBER.format(label=self._offered[slot]))]
        if not self._slot:
            return None
        digits = re.sub(r"\D", "", text)
        if not digits:  # said or keyed something else: the booking is left, the bot answers
            self._slot = ""
            return None
        if not MOBILE.fullmatch(digits):
            self._tries += 1
            logger.info("voice.transfer.bad_number tries=%d", self._tries)
            if self._tries >= NUMBER_TRIES:
                self._slot = ""
                return [BotMessage(text=GIVE_UP_NUMBER)]
            return [BotMessage(text=BAD_NUMBER)]
        slot, self._slot = self._slot, ""
        try:
            label = await self._desk.appointments.book_callback(self._sender_id, slot, digits)
        except HandoffError as exc:
            slots = await self._desk.appointments.free_slots()
            menu = self._booking_menu({"type": "handoff_booking", "reason": "busy", "slots": slots})
            return [BotMessage(text=exc.message), menu]
        logger.info("voice.transfer.callback_booked slot=%s phone=%s", slot, mask_phone(digits))
        return [BotMessage(text=BOOKED.format(label=label, last4=digits[-4:]))]

    def _follow(self, ticket_id: str, key: str, position: int) -> None:
        if ticket_id != self.ticket_id:
            self._after = "0"
        self.ticket_id, self._key, self.state = ticket_id, key, "waiting"
        self._told, self._told_at = position, self._clock()
        logger.info("voice.transfer.queued ticket=%s position=%d", ticket_id, position)

    async def poll(self) -> list[str]:
        """What to tell the caller now (position changes, staff joining, staff's messages, the end)."""
        if not self.ticket_id:
            return []
        ticket_id, texts = self.ticket_id, []
        for message in await self._desk.messages(ticket_id, self._after):
            self._after = message["id"]
            if message.get("to") == "staff" or message.get("from") not in ("staff", "system"):
                continue
            if message.get("text"):
                texts.append(message["text"])
        ticket = await self._desk.get(ticket_id)
        if self.bridge is not None and (ticket is None or ticket.state != TicketState.ACTIVE
                                        or ticket.room_id != self._room or self.bridge.closed):
            await self._close_bridge()
        if ticket is None or ticket.state in (TicketState.ENDED, TicketState.CANCELLED):
            if not texts:
                texts.append(SESSION_ENDED if self.state == "active" else QUEUE_ENDED)
            logger.info("voice.transfer.finished ticket=%s state=%s", ticket_id, ticket.state.value if ticket else "gone")
            self._forget()
            return texts
        if ticket.state == TicketState.ACTIVE and ticket.consent and self.bridge is None and self._can_bridge() \
                and self._clock() >= self._bridge_retry_at:
            await self._open_bridge(ticket)
        if ticket.state == TicketState.WAITING:
            await self._desk.touch(ticket_id)  # the caller is on the line: their place is kept
            if self.state == "active":  # staff dropped: the desk put the caller back (and said why)
                self.state = "waiting"
            position = await self._desk.position(ticket_id) or 0
            now = self._clock()
            if position and position != self._told and now - self._told_at >= self._announce_every_s:
                eta_s = await self._desk.eta_s(position)
                texts.append(POSITION.format(queue=queue_words(position, eta_s)))
                self._told, self._told_at = position, now
        elif ticket.state == TicketState.ACTIVE and self.state != "active":
            self.state = "active"
            self._asked = self._can_bridge() and ticket.consent is None
            texts.append(STAFF_JOINED_ASK if self._asked else STAFF_JOINED)
            logger.info("voice.transfer.staff_joined ticket=%s", ticket_id)
        return texts

    def _can_bridge(self) -> bool:
        return self._media is not None and self._send_pcm is not None

    async def _open_bridge(self, ticket) -> None:
        self.bridge, self._room = StaffBridge(self._rate, self._send_pcm), ticket.room_id
        try:
            token = await self._desk.issue_room_token(ticket, "citizen")
            await self.bridge.connect(self._media.answer, token)
            logger.info("voice.transfer.bridged ticket=%s", ticket.id)
        except Exception as exc:  # the room refused or is gone: tried again in a few seconds
            logger.warning("voice.transfer.bridge_failed ticket=%s error=%s", ticket.id, type(exc).__name__)
            self._bridge_retry_at = self._clock() + BRIDGE_RETRY_S
            await self._close_bridge()

    async def _close_bridge(self) -> None:
        bridge, self.bridge, self._room = self.bridge, None, ""
        if bridge is not None:
            await bridge.close()

    async def cancel(self) -> str:
        """The caller keyed `#` while waiting: the same cancel as the web page's button."""
        ticket_id = self.ticket_id
        try:
            await self._desk.cancel(ticket_id, self._key)
        except HandoffError:
            pass  # ended meanwhile: nothing to cancel
        self._forget()
        logger.info("voice.transfer.cancelled_by_caller ticket=%s", ticket_id)
        return CANCELLED

    async def call_ended(self, reason: str) -> None:
        """The call is over, whyever: a waiting ticket is cancelled, an active session ends."""
        if not self.holding:
            return
        ticket_id = self.ticket_id
        await self._close_bridge()
        try:
            ended = await self._desk.hang_up(ticket_id, self._key)
            if ended is not None and self._media is not None:
                await self._media.close(ended)  # the room and its recording, as when a web citizen hangs up
        except HandoffError:
            pass
        self._forget()
        logger.info("voice.transfer.call_ended ticket=%s reason=%s", ticket_id, reason)

    def _forget(self) -> None:
        self.ticket_id, self._key, self.state, self._told, self._asked = "", "", "", None, False


def transfer_for(app, sender_id: str) -> Optional[CallTransfer]:
    """A call's transfer, when the app runs the handoff desk (an app built without it has no queue)."""
    video = getattr(app.state, "video", None)
    return CallTransfer(video.desk, sender_id, media=video) if video is not None else None
