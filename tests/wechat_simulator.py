"""A local stand-in for api.weixin.qq.com, and WeChat's side of the message push, for tests.

`WeChatSimulator` serves the calls the gateway makes (jscode2session, cgi-bin/token,
cgi-bin/media/upload for a card's cover and cgi-bin/message/custom/send) over real HTTP on a free port (uvicorn in a thread, like the fake
Rasa of tests/browser/test_video_handoff.py), records every call, and can expire the current
access_token or make a user unreachable. `push_body` builds a callback as WeChat would send it:
plaintext or safe mode (AES-256-CBC via wechatpy), XML or JSON.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import httpx
import uvicorn
import xmltodict
from fastapi import FastAPI, Request
from wechatpy.crypto import WeChatCrypto

APPID, SECRET = "wx-dev-appid", "dev-wechat-app-secret"
TOKEN = "dev-wechat-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"   # 43 characters, like an EncodingAESKey


@dataclass
class Call:
    path: str
    params: dict
    body: Optional[dict] = None
    at: float = field(default_factory=time.monotonic)   # when the call arrived (benches)


@dataclass
class WeChatSimulator:
    appid: str = APPID
    secret: str = SECRET
    calls: list[Call] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)       # login code -> openid (each usable once)
    unreachable: dict[str, int] = field(default_factory=dict)  # openid -> errcode for custom/send
    valid_tokens: set[str] = field(default_factory=set)
    media: set[str] = field(default_factory=set)               # media_ids uploaded (a card must name one)
    send_delay_s: float = 0.0                                  # how long custom/send takes (benches)
    _serial: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what the tests do ---
    def login_code(self, openid: str) -> str:
        code = f"code-{next(self._serial)}"
        self.codes[code] = openid
        return code

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def sent(self, openid: Optional[str] = None) -> list[dict]:
        """Messages WeChat accepted (to one user)."""
        return [c.body for c in self.calls if c.path.endswith("/custom/send") and c.params.get("_accepted")
                and (openid is None or c.body["touser"] == openid)]

    def count(self, path_end: str) -> int:
        return sum(1 for c in self.calls if c.path.endswith(path_end))

    # --- the API ---
    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/sns/jscode2session")
        async def jscode2session(request: Request) -> dict:
            q = dict(request.query_params)
            self.calls.append(Call("/sns/jscode2session", q))
            if q.get("appid") != self.appid or q.get("secret") != self.secret:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            if q.get("grant_type") != "authorization_code":
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            openid = self.codes.pop(q.get("js_code", ""), None)
            if openid is None:
                return {"errcode": 40029, "errmsg": "invalid code"}
            return {"openid": openid, "session_key": "c2Vzc2lvbmtleQ=="}

        @app.get("/cgi-bin/token")
        async def token(request: Request) -> dict:
            q = dict(request.query_params)
            self.calls.append(Call("/cgi-bin/token", q))
            if q.get("appid") != self.appid or q.get("secret") != self.secret or q.get("grant_type") != "client_credential":
                return {"errcode": 40013, "errmsg": "invalid appid"}
            with self._lock:
                issued = f"tok-{next(self._serial)}"
                self.valid_tokens = {issued}   # a new token invalidates the one before, as WeChat does
            return {"access_token": issued, "expires_in": 7200}

        @app.post("/cgi-bin/media/upload")
        async def upload(request: Request) -> dict:
            q = dict(request.query_params)
            raw = await request.body()   # multipart: one part named "media" holding the image
            is_image = b'name="media"' in raw and (b"\x89PNG\r\n" in raw or b"\xff\xd8\xff" in raw)
            self.calls.append(Call("/cgi-bin/media/upload", q, {"bytes": len(raw), "type": q.get("type")}))
            if q.get("access_token") not in self.valid_tokens:
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            if q.get("type") != "image" or not is_image:
                return {"errcode": 40004, "errmsg": "invalid media type"}
            media_id = f"media-{next(self._serial)}"
            self.media.add(media_id)
            return {"type": "image", "media_id": media_id, "created_at": int(time.time())}

        @app.post("/cgi-bin/message/custom/send")
        async def send(request: Request) -> dict:
            q = dict(request.query_params)
            body = json.loads(await request.body())
            call = Call("/cgi-bin/message/custom/send", q, body)
            self.calls.append(call)
            if self.send_delay_s:
                await asyncio.sleep(self.send_delay_s)
            if q.get("access_token") not in self.valid_tokens:
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            if body.get("touser") in self.unreachable:
                return {"errcode": self.unreachable[body["touser"]], "errmsg": "response out of time limit"}
            if body.get("msgtype") == "miniprogrampage" and body["miniprogrampage"].get("thumb_media_id") not in self.media:
                return {"errcode": 40007, "errmsg": "invalid media_id"}
            q["_accepted"] = True
            return {"errcode": 0, "errmsg": "ok"}

        return app


class SimulatorServer:
    """Runs a simulator on 127.0.0.1:port in a thread until stopped."""

    def __init__(self, sim: WeChatSimulator, port: int):
        self.sim, self.port = sim, port
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(sim.app(), host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "SimulatorServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/cgi-bin/token", timeout=1)
                self.sim.calls.clear()
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the WeChat simulator did not start")

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


# --- WeChat's side of the push ---
def signature(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted([token, *parts])).encode()).hexdigest()


def message_fields(openid: str, content: Optional[str] = "你好", msg_id: Optional[int] = 1, msg_type: str = "text",
                   event: Optional[str] = None, create_time: Optional[int] = None) -> dict:
    fields = {"ToUserName": "gh_anju", "FromUserName": openid, "CreateTime": create_time or int(time.time()),
              "MsgType": msg_type}
    if msg_type == "text":
        fields["Content"] = content
    if msg_type == "image":
        fields.update(PicUrl="http://example.invalid/p.jpg", MediaId="m1")
    if event:
        fields["Event"] = event
    if msg_id is not None and msg_type != "event":
        fields["MsgId"] = msg_id
    return fields


def render(fields: dict, msg_format: str) -> str:
    if msg_format == "json":
        return json.dumps(fields, ensure_ascii=False)
    return xmltodict.unparse({"xml": fields}, full_document=False)


def push_body(fields: dict, msg_format: str = "xml", aes_key: str = "", token: str = TOKEN, appid: str = APPID,
              timestamp: Optional[str] = None, nonce: str = "nonce123") -> tuple[dict, bytes]:
    """(query, body) of one push as WeChat sends it."""
    timestamp = timestamp or str(int(time.time()))
    plain = render(fields, msg_format)
    if not aes_key:
        return {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}, plain.encode()
    envelope = xmltodict.parse(WeChatCrypto(token, aes_key, appid).encrypt_message(plain, nonce, timestamp))["xml"]
    query = {"signature": signature(token, timestamp, nonce), "msg_signature": envelope["MsgSignature"],
             "timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes"}
    if msg_format == "json":
        return query, json.dumps({"ToUserName": "gh_anju", "Encrypt": envelope["Encrypt"]}).encode()
    return query, xmltodict.unparse({"xml": {"ToUserName": "gh_anju", "Encrypt": envelope["Encrypt"]}},
                                    full_document=False).encode()
