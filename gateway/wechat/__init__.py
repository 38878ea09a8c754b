"""WeChat: the mini-program's login and chat, and the customer-service message callback.

`WeChat` is the one object the app owns (app.state.wechat): the server API client (code2Session,
access_token, custom/send), the callback codec, the inbox and its worker, the turn logic both
ways in share (a signed openid assertion on every turn; "解除绑定" handled without the bot), and,
given the handoff desk, the relay that tells pushed citizens about their video ticket (video.py
says how a handoff looks in WeChat).
"""
from __future__ import annotations

import asyncio
from typing import Optional

import httpx
from redis.asyncio import Redis

from gateway.conversation import Conversation
from gateway.handoff import HandoffDesk
from gateway.limits import RateLimiter
from gateway.sessions import SessionStore
from gateway.settings import Settings
from gateway.wechat.api import WeChatApi
from gateway.wechat.codec import CallbackCodec, CallbackRejected, Incoming
from gateway.wechat.inbox import Inbox, InboxWorker
from gateway.wechat.turns import OPENID_KIND, CoreBinding, WeChatTurns

__all__ = ["WeChat", "CallbackRejected", "Incoming", "OPENID_KIND"]


class WeChat:
    def __init__(self, settings: Settings, redis: Redis, conversation: Conversation, store: SessionStore,
                 limiter: RateLimiter, wechat_transport: Optional[httpx.AsyncBaseTransport] = None,
                 core_transport: Optional[httpx.AsyncBaseTransport] = None, desk: Optional[HandoffDesk] = None):
        self.api = WeChatApi(redis, settings.wechat_api_base, settings.wechat_appid,
                             settings.wechat_app_secret.get_secret_value(), settings.wechat_timeout_s,
                             transport=wechat_transport)
        self.codec = CallbackCodec(settings.wechat_token.get_secret_value(), settings.wechat_appid,
                                   settings.wechat_aes_key.get_secret_value(), settings.wechat_msg_format)
        self.binding = CoreBinding(settings.core_url, settings.core_api_token.get_secret_value(),
                                   settings.audit_timeout_s, transport=core_transport)
        self.turns = WeChatTurns(settings, conversation, store, self.binding)
        self.inbox = Inbox(redis)
        self.worker = InboxWorker(redis, self.turns, store, self.api, limiter, settings, desk=desk)

    def start(self) -> asyncio.Future:
        jobs = [self.worker.run()] + ([self.worker.relay.run()] if self.worker.relay is not None else [])
        return asyncio.ensure_future(asyncio.gather(*jobs))

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.binding.aclose()
