"""The WeChat server API the gateway calls: code2Session, access_token, customer-service send (text and
mini-program cards, whose cover image is uploaded once as temporary media).

The access_token is shared by every gateway process through redis. It is cached for less than
its lifetime (REFRESH_MARGIN_S early), so it is refreshed before WeChat expires it, and only
the process holding the refresh lock asks WeChat for a new one (each request for a token
invalidates the previous one, so two refreshers would knock each other's token out). When
WeChat still calls a token invalid (40001/40014/42001) it is refreshed once and the call
repeated once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any, Optional

import httpx
from redis.asyncio import Redis

from gateway import keys

logger = logging.getLogger(__name__)
TOKEN_INVALID = frozenset({40001, 40014, 42001})
USER_UNREACHABLE = frozenset({45015, 45047})   # reply window over / too many replies without an answer
CODE_INVALID = frozenset({40029, 40163, 40226})
REFRESH_MARGIN_S = 300
LOCK_TTL_S = 10


class WeChatError(Exception):
    def __init__(self, errcode: int, errmsg: str = ""):
        super().__init__(f"errcode={errcode} errmsg={errmsg}")
        self.errcode = errcode


class InvalidCode(WeChatError):
    """The mini-program's login code is wrong, used or expired."""


class UserUnreachable(WeChatError):
    """WeChat will not take more messages for this user until they write again."""


class WeChatUnavailable(Exception):
    """WeChat's server could not be reached or answered garbage."""


class WeChatApi:
    def __init__(self, redis: Redis, base_url: str, appid: str, secret: str, timeout_s: float,
                 transport: Optional[httpx.AsyncBaseTransport] = None):
        self._r = redis
        self._appid, self._secret = appid, secret
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs) -> dict[str, Any]:
        try:
            resp = await self._http.request(method, path, **kwargs)
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("wechat.api.unavailable path=%s error=%s", path, type(exc).__name__)
            raise WeChatUnavailable(path) from exc
        if not isinstance(body, dict):
            raise WeChatUnavailable(path)
        return body

    # --- mini-program login ---------------------------------------------------------------
    async def code2session(self, code: str) -> str:
        """The openid behind a wx.login() code (the session_key is not kept: we never decrypt user data)."""
        body = await self._call("GET", "/sns/jscode2session", params={
            "appid": self._appid, "secret": self._secret, "js_code": code, "grant_type": "authorization_code"})
        errcode = int(body.get("errcode") or 0)
        if errcode or not body.get("openid"):
            logger.info("wechat.login.refused errcode=%s", errcode)
            raise InvalidCode(errcode, str(body.get("errmsg", "")))
        return str(body["openid"])

    # --- access_token -----------------------------------------------------------------------
    async def access_token(self, stale: Optional[str] = None) -> str:
        """The shared token; `stale` is one WeChat just refused, which is then replaced."""
        for _ in range(50):
            cached = await self._r.get(keys.wechat_access_token())
            if cached and cached != stale:
                return cached
            owner = secrets.token_hex(8)
            if await self._r.set(keys.wechat_access_token_lock(), owner, nx=True, ex=LOCK_TTL_S):
                try:
                    cached = await self._r.get(keys.wechat_access_token())
                    if cached and cached != stale:
                        return cached
                    return await self._fetch_token()
                finally:
                    if await self._r.get(keys.wechat_access_token_lock()) == owner:
                        await self._r.delete(keys.wechat_access_token_lock())
            await asyncio.sleep(0.1)   # another process is refreshing: wait for its token
        raise WeChatUnavailable("access_token lock")

    async def _fetch_token(self) -> str:
        body = await self._call("GET", "/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": self._appid, "secret": self._secret})
        token = body.get("access_token")
        if not token:
            logger.warning("wechat.token.refused errcode=%s", body.get("errcode"))
            raise WeChatError(int(body.get("errcode") or -1), str(body.get("errmsg", "")))
        ttl = max(60, int(body.get("expires_in") or 7200) - REFRESH_MARGIN_S)
        await self._r.set(keys.wechat_access_token(), token, ex=ttl)
        logger.info("wechat.token.refreshed ttl_s=%d", ttl)
        return token

    # --- customer-service messages ---------------------------------------------------------------
    async def send_text(self, openid: str, text: str) -> None:
        await self._send({"touser": openid, "msgtype": "text", "text": {"content": text}})

    async def send_page_card(self, openid: str, title: str, pagepath: str, thumb: bytes) -> None:
        """A mini-program card that opens `pagepath` in the mini-program; `thumb` is its cover image."""
        media_id = await self.card_thumb_id(thumb)
        await self._send({"touser": openid, "msgtype": "miniprogrampage",
                          "miniprogrampage": {"title": title, "pagepath": pagepath, "thumb_media_id": media_id}})

    async def card_thumb_id(self, thumb: bytes) -> str:
        """The cover's media_id: uploaded as a temporary image once, reused until shortly before WeChat drops it."""
        cached = await self._r.get(keys.wechat_card_thumb())
        if cached:
            return cached
        body = await self._with_token("/cgi-bin/media/upload", params={"type": "image"},
                                      files={"media": ("video_card.png", thumb, "image/png")})
        media_id = body.get("media_id")
        if not media_id:
            raise WeChatError(-1, "media/upload answered without media_id")
        await self._r.set(keys.wechat_card_thumb(), media_id, ex=keys.WECHAT_CARD_THUMB_TTL_S)
        logger.info("wechat.card_thumb.uploaded")
        return str(media_id)

    async def _send(self, payload: dict) -> None:
        await self._with_token("/cgi-bin/message/custom/send", content=_json(payload),
                               headers={"Content-Type": "application/json"})

    async def _with_token(self, path: str, params: Optional[dict] = None, **kwargs) -> dict[str, Any]:
        """POSTs with the shared access_token; a token WeChat calls invalid is replaced and the call repeated once."""
        token = await self.access_token()
        body = await self._call("POST", path, params={**(params or {}), "access_token": token}, **kwargs)
        errcode = int(body.get("errcode") or 0)
        if errcode in TOKEN_INVALID:
            logger.info("wechat.token.rejected errcode=%s", errcode)
            token = await self.access_token(stale=token)
            body = await self._call("POST", path, params={**(params or {}), "access_token": token}, **kwargs)
            errcode = int(body.get("errcode") or 0)
        if errcode in USER_UNREACHABLE:
            raise UserUnreachable(errcode, str(body.get("errmsg", "")))
        if errcode:
            raise WeChatError(errcode, str(body.get("errmsg", "")))
        return body


def _json(payload: dict) -> bytes:
    """WeChat wants UTF-8 Chinese as is, not \\u escapes (it counts the bytes against a limit)."""
    return json.dumps(payload, ensure_ascii=False).encode()
