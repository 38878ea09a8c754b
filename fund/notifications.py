"""Citizen notices of online applications: an outbox written with each status change.

Every status an online application enters (submitted, under_review, approved, rejected with
the reason, paid, cancelled, the sandbox review rule's steps included) writes one row to the
`notifications` outbox and the same text as a sandbox SMS to the person's registered phone, in
the transaction that changes the status: a step that fails leaves no notice, and a notice is
never lost after its step committed. The gateway reads the outbox (GET /notifications) and
tells the citizen on the channel they applied from (`channel_ref`, the bot's sender id); the
SMS reaches everyone, hotline callers included.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from fund.clock import china_date
from fund.models import Application, Notification, Person, SmsOutbox
from fund.persons import APPLICATION_KINDS

SMS_PREFIX = "【住房公积金】"
# Channels whose notices the gateway sends as WeChat customer-service messages: they need the openid.
WECHAT_PREFIXES = ("wx-", "wxmsg-", "wechat-")


def _yuan(amount) -> str:
    return f"{amount:,.2f}"


def _card_tail(app: Application) -> str:
    """（尾号1234） from the signature's masked card, or nothing when it is unknown."""
    signature = app.signature
    if signature is None:
        return ""
    digits = json.loads(signature.record).get("card", "")[-4:]
    return f"（尾号{digits}）" if digits.isdigit() else ""


def notice_text(app: Application, status: str, reason: Optional[str] = None,
                pay_by: Optional[dt.datetime] = None) -> str:
    """The Chinese text of one status change, as the citizen reads it (web, WeChat and SMS alike)."""
    what = f"您的{APPLICATION_KINDS.get(app.kind, app.kind)}申请 {app.number}"
    if status == "submitted":
        follow = "材料齐全，将尽快审核。" if app.complete else "工作人员将审核您补充的材料，结果会及时通知您。"
        return f"{what} 已提交，提取金额 {_yuan(app.amount)} 元。{follow}"
    if status == "under_review":
        return f"{what} 已进入审核。"
    if status == "approved":
        when = f"{china_date(pay_by):%-m月%-d日}前" if pay_by else "近期"
        return f"{what} 已审批通过，资金将在{when}到账至您登记的银行卡{_card_tail(app)}。"
    if status == "rejected":
        return f"{what} 未通过，原因：{(reason or '').rstrip('。')}。如有疑问，可以咨询智能助手转人工，或拨打 12329 服务热线。"
    if status == "paid":
        return f"{what} 已到账，{_yuan(app.amount)} 元已转入您登记的银行卡{_card_tail(app)}。"
    if status == "cancelled":
        return f"{what} 已撤销。如需办理，可以重新申请。"
    raise ValueError(f"no notice for status {status!r}")


def record(session: Session, app: Application, status: str, at: dt.datetime, reason: Optional[str] = None,
           pay_by: Optional[dt.datetime] = None, person: Optional[Person] = None) -> Notification:
    """Writes the notice and its SMS in `session`: committed with the status change, or not at all."""
    person = person or app.person
    text = notice_text(app, status, reason, pay_by)
    row = Notification(application_id=app.id, number=app.number, person_id=person.id,
                       channel_ref=app.channel_ref or "unknown", status=status, text=text, created_at=at)
    session.add(row)
    session.add(SmsOutbox(phone=person.phone, code="", text=SMS_PREFIX + text, sent_at=at))
    return row


def since(session: Session, after: int, limit: int) -> list[dict]:
    """Notices with id > after, oldest first. WeChat ones carry the person's bound openid (None when
    unbound: then the SMS is the only notice), every other one `openid: None`."""
    rows = session.execute(select(Notification, Person.wechat_openid).join(Person, Person.id == Notification.person_id)
                           .where(Notification.id > after).order_by(Notification.id).limit(limit)).all()
    return [{"id": n.id, "application": n.number, "channel_ref": n.channel_ref, "status": n.status, "text": n.text,
             "created_at": n.created_at.isoformat(timespec="seconds"),
             "openid": openid if n.channel_ref.startswith(WECHAT_PREFIXES) else None} for n, openid in rows]
