"""One turn of a WeChat citizen, whichever way they came in (mini-program chat or pushed message).

The openid the gateway established (login code or WeChat's signed push) goes to the actions as a
signed assertion on every turn, so a bound openid verifies without typing anything, and the
actions bind it after an ID + code verification. "解除绑定" is answered here, without the bot:
the core unbinds and audits, and the conversation forgets who was verified.
"""
from __future__ import annotations

import logging
from typing import Optional

import httpx

from gateway.conversation import BotMessage, BotUnavailable, Conversation
from gateway.identity import signed_identity
from gateway.internal_http import internal_client
from gateway.sessions import Session, SessionStore
from gateway.settings import Settings
from gateway.turns import session_turn

logger = logging.getLogger(__name__)
OPENID_KIND = "wechat_openid"
UNBIND_COMMANDS = frozenset({"解除绑定", "解除微信绑定", "/unbind_wechat"})
UNBOUND_TEXT = "已解除本微信与公积金账户的绑定，本次会话的身份验证也已失效。以后办理个人业务时，需要重新输入身份证号并验证短信验证码。"
NOT_BOUND_TEXT = "本微信没有绑定公积金账户，无需解除；本次会话的身份验证已失效。"
UNBIND_FAILED_TEXT = "解除绑定暂时没有成功，请稍后再试；急需办理可拨打 12329 服务热线。"


class CoreBinding:
    """The core's openid binding (POST /identity/openid/unbind); binding itself is done by the actions."""

    def __init__(self, core_url: str, token: str, timeout_s: float,
                 transport: Optional[httpx.AsyncBaseTransport] = None):
        self._http = internal_client(base_url=core_url.rstrip("/"), timeout=timeout_s, transport=transport,
                                       headers={"Authorization": f"Bearer {token}"})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def unbind(self, openid: str, channel_ref: str) -> bool:
        """True when a binding was removed; BotUnavailable when the core cannot say."""
        try:
            resp = await self._http.post("/identity/openid/unbind", json={"openid": openid, "channel_ref": channel_ref})
            resp.raise_for_status()
            return bool(resp.json().get("unbound"))
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("wechat.unbind.failed error=%s", type(exc).__name__)
            raise BotUnavailable() from exc


class WeChatTurns:
    def __init__(self, settings: Settings, conversation: Conversation, store: SessionStore, binding: CoreBinding):
        self._settings = settings
        self._conversation = conversation
        self._store = store
        self._binding = binding

    async def turn(self, session: Session, text: object, metadata: object = None, ip: str = "") -> list[BotMessage]:
        if session.identity_kind != OPENID_KIND or not session.identity:
            raise ValueError("a WeChat turn needs a session with an openid")
        if isinstance(text, str) and text.strip() in UNBIND_COMMANDS:
            return [BotMessage(text=await self._unbind(session))]
        assertion = signed_identity(self._settings, session.sender_id, OPENID_KIND, session.identity)
        return await session_turn(self._conversation, self._store, session, text, metadata, ip,
                                  trusted_metadata=assertion)

    async def _unbind(self, session: Session) -> str:
        try:
            removed = await self._binding.unbind(session.identity, session.sender_id)
        except BotUnavailable:
            return UNBIND_FAILED_TEXT
        await self._store.mark_unverified(session)
        await self._conversation.forget_verification(session.sender_id)
        logger.info("wechat.unbind.done removed=%s", removed)
        return UNBOUND_TEXT if removed else NOT_BOUND_TEXT
