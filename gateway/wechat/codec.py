"""The message-push callback's wire format: signatures, safe mode (AES-256-CBC) and XML or JSON.

wechatpy does the WXBizMsgCrypt work (signature, AES, the appid check); this module adds what
it leaves out — a timestamp window against replays, a strict PKCS#7 padding check, JSON bodies —
and turns every way a body can be wrong into one `CallbackRejected` with a 4xx status.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

MAX_CLOCK_SKEW_S = 5 * 60


class CallbackRejected(Exception):
    """A callback we will not act on; `reason` goes to the log, `status` to WeChat (always 4xx)."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Incoming:
    """One message or event from a citizen, as queued for the worker."""

    openid: str
    msg_type: str             # text, image, miniprogrampage, event, ...
    content: str = ""         # the text of a text message
    event: str = ""           # e.g. user_enter_tempsession
    msg_id: str = ""
    create_time: int = 0

    @property
    def dedupe_id(self) -> str:
        """WeChat retries a push up to three times: MsgId names a message, FromUserName+CreateTime an event."""
        return f"msg:{self.msg_id}" if self.msg_id else f"event:{self.openid}:{self.create_time}"

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Incoming":
        return cls(**json.loads(text))


class _StrictPrpCrypto(PrpCrypto):
    """wechatpy's decryption takes any last byte as the padding length; refuse a bad one first."""

    def decrypt(self, text, app_id):
        try:
            plain = self.cipher.decrypt(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise CallbackRejected("bad_ciphertext") from exc
        pad = plain[-1] if plain else 0
        if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad or len(plain) < 20 + pad:
            raise CallbackRejected("bad_padding")
        return super().decrypt(text, app_id)


class _SafeModeCrypto(WeChatCrypto):
    def decrypt_message(self, msg, signature, timestamp, nonce):
        return self._decrypt_message(msg, signature, timestamp, nonce, _StrictPrpCrypto)


class CallbackCodec:
    def __init__(self, token: str, appid: str, aes_key: str, msg_format: str,
                 clock: Callable[[], float] = time.time):
        self._token = token
        self._format = msg_format
        self._crypto = _SafeModeCrypto(token, aes_key, appid) if aes_key else None
        self._clock = clock

    @property
    def safe_mode(self) -> bool:
        return self._crypto is not None

    def _fresh(self, timestamp: str) -> None:
        try:
            age = abs(self._clock() - int(timestamp))
        except (TypeError, ValueError):
            raise CallbackRejected("bad_timestamp", 403)
        if age > MAX_CLOCK_SKEW_S:
            raise CallbackRejected("stale_timestamp", 403)

    def verify_url(self, query: Mapping[str, str]) -> str:
        """GET from WeChat when the URL is configured: the echostr back if the signature is ours."""
        self._check_plain_signature(query)
        echostr = query.get("echostr", "")
        if not echostr:
            raise CallbackRejected("no_echostr", 400)
        return echostr

    def _check_plain_signature(self, query: Mapping[str, str]) -> None:
        signature, timestamp, nonce = (query.get(k, "") for k in ("signature", "timestamp", "nonce"))
        if not (signature and timestamp and nonce):
            raise CallbackRejected("missing_signature", 403)
        try:
            check_signature(self._token, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise CallbackRejected("bad_signature", 403)
        self._fresh(timestamp)

    def decode(self, query: Mapping[str, str], body: bytes) -> Incoming:
        """A pushed message, checked and decrypted; CallbackRejected for anything else."""
        if self._crypto is None:
            self._check_plain_signature(query)
            return self._message(self._parse(body))
        signature, timestamp, nonce = (query.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        if not (signature and timestamp and nonce):
            raise CallbackRejected("missing_signature", 403)
        envelope = self._parse(body)
        if not isinstance(envelope.get("Encrypt"), str) or not envelope["Encrypt"]:
            raise CallbackRejected("no_encrypt_field")
        try:
            plain = self._crypto.decrypt_message(envelope, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise CallbackRejected("bad_signature", 403)
        except InvalidAppIdException:
            raise CallbackRejected("wrong_appid")
        except (UnicodeDecodeError, ValueError, IndexError) as exc:   # a length field past the end, etc.
            raise CallbackRejected("bad_plaintext") from exc
        self._fresh(timestamp)
        return self._message(self._parse(plain.encode() if isinstance(plain, str) else plain))

    def _parse(self, body: bytes) -> dict[str, Any]:
        try:
            if self._format == "json":
                data = json.loads(body)
            else:
                data = xmltodict.parse(body.decode("utf-8"), disable_entities=True).get("xml")
        except (ValueError, UnicodeDecodeError, ExpatError, AttributeError) as exc:
            raise CallbackRejected(f"malformed_{self._format}") from exc
        if not isinstance(data, dict):
            raise CallbackRejected(f"malformed_{self._format}")
        return data

    @staticmethod
    def _message(data: dict[str, Any]) -> Incoming:
        def text(name: str) -> str:
            value = data.get(name)
            return "" if value is None else str(value)

        openid, msg_type = text("FromUserName"), text("MsgType").lower()
        if not openid or not msg_type or len(openid) > 64:
            raise CallbackRejected("missing_fields")
        try:
            create_time = int(text("CreateTime") or 0)
        except ValueError:
            raise CallbackRejected("missing_fields")
        return Incoming(openid=openid, msg_type=msg_type, content=text("Content") if msg_type == "text" else "",
                        event=text("Event").lower(), msg_id=text("MsgId"), create_time=create_time)

