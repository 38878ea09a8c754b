"""The video handoff as a WeChat citizen sees it.

The web widget shows the queue and the call inside its own page. In WeChat the call runs in the
mini-program's page `pages/video/video`, a web-view on the gateway's /wx/video page (the same
handoff.js as the widget), with the ticket in the URL fragment, which no server or access log sees.
- Mini-program chat (/api/wx/chat): a queued handoff carries `page`, the path the chat page opens.
- Message push: a queued handoff becomes a text with the queue position plus a mini-program card
  (`miniprogrampage`) that opens the same page; appointment slots become numbered choices.
"""
from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import urlencode

from gateway.conversation import BotMessage, Button

VIDEO_PAGE = "pages/video/video"
CARD_TITLE = "视频办理：点此进入视频页面"
CARD_THUMB = Path(__file__).with_name("video_card.png")   # the card's cover; a centre may replace it (520×416)
BOOK_PREFIX = "wechat-book:"   # a numbered choice that books an appointment slot (never sent to the bot)
CANCEL_COMMANDS = frozenset({"取消排队", "取消视频", "取消转人工"})
QUEUED_TEXT = ("已为您排队转接工作人员视频服务，{queue}\n排队有变化、工作人员接入时会在这里通知您。"
               "点开下面的卡片进入视频页面；回复“取消排队”可以退出排队。")
NO_SLOTS_TEXT = "近期视频办理的预约已满，请拨打 12329 服务热线预约。"
BOOKED_TEXT = "已为您预约 {label} 的视频办理。届时回复“转人工”即可排队接通工作人员。"
CARD_FAILED_TEXT = "视频页面的卡片暂时发送失败。请打开本中心小程序，在聊天页面点“转人工”进入视频办理。"


def video_page_path(ticket_id: str, key: str) -> str:
    return f"{VIDEO_PAGE}?{urlencode({'ticket': ticket_id, 'key': key})}"


def queue_text(position: int, eta_s: int) -> str:
    ahead = max(0, position - 1)
    minutes = max(1, math.ceil(eta_s / 60)) if eta_s else 1
    return f"前面还有 {ahead} 位，预计等待约 {minutes} 分钟。"


def _kind(message: BotMessage) -> str:
    return str((message.custom or {}).get("type") or "")


def for_mini_program(messages: list[BotMessage]) -> list[BotMessage]:
    """The chat page renders a queued handoff as a button that opens `page` (the video page with the ticket)."""
    out = []
    for message in messages:
        custom = message.custom or {}
        if _kind(message) == "handoff_queued" and custom.get("ticket_id") and custom.get("key"):
            page = "/" + video_page_path(str(custom["ticket_id"]), str(custom["key"]))
            message = message.model_copy(update={"custom": {**custom, "page": page}})
        out.append(message)
    return out


def for_push(messages: list[BotMessage]) -> tuple[list[BotMessage], list[dict]]:
    """One turn's messages as the message push shows them, and the queued tickets that need a card."""
    out: list[BotMessage] = []
    queued: list[dict] = []
    for message in messages:
        custom = message.custom or {}
        kind = _kind(message)
        if kind == "handoff_queued" and custom.get("ticket_id") and custom.get("key"):
            queue = queue_text(int(custom.get("position") or 1), int(custom.get("eta_s") or 0))
            out.append(BotMessage(text=QUEUED_TEXT.format(queue=queue)))
            queued.append(custom)
        elif kind == "handoff_booking":
            slots = [s for s in custom.get("slots") or [] if s.get("slot") and s.get("label")]
            if slots:
                out.append(BotMessage(text=message.text, buttons=[
                    Button(title=s["label"], payload=BOOK_PREFIX + s["slot"]) for s in slots]))
            else:
                out.append(BotMessage(text=NO_SLOTS_TEXT))
        else:
            out.append(message)
    return out, queued
