"""Test citizens as API clients hold them: one gateway-issued session token per label.

Tests name citizens by a label ("it-faq"); the first turn of a label gets a session
(POST /api/session), and a rotated token (after identity verification) replaces the old one,
as a real client would keep it. `sender_id_of` reads the server-side mapping from redis,
which only tests may do, to look at Rasa's tracker.
"""
from __future__ import annotations

import hashlib
from typing import Optional

import httpx
import redis


class Citizens:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.tokens: dict[str, str] = {}

    def headers(self, label: str) -> dict[str, str]:
        if label not in self.tokens:
            resp = httpx.post(f"{self.base_url}/api/session", timeout=10)
            assert resp.status_code == 200, resp.text
            self.tokens[label] = resp.json()["token"]
        return {"Authorization": f"Bearer {self.tokens[label]}"}

    def post(self, label: str, text: str, metadata: Optional[dict] = None, timeout: float = 60) -> httpx.Response:
        body = {"text": text, **({"metadata": metadata} if metadata else {})}
        resp = httpx.post(f"{self.base_url}/api/chat", json=body, headers=self.headers(label), timeout=timeout)
        self.keep(label, resp)
        return resp

    def say(self, label: str, text: str, metadata: Optional[dict] = None, timeout: float = 60) -> list[dict]:
        resp = self.post(label, text, metadata, timeout)
        assert resp.status_code == 200, resp.text
        return resp.json()["messages"]

    async def say_async(self, http: httpx.AsyncClient, label: str, text: str,
                        metadata: Optional[dict] = None) -> list[dict]:
        if label not in self.tokens:
            self.tokens[label] = (await http.post("/api/session", timeout=10)).json()["token"]
        body = {"text": text, **({"metadata": metadata} if metadata else {})}
        resp = await http.post("/api/chat", json=body, timeout=30, headers=self.headers(label))
        assert resp.status_code == 200, resp.text
        self.keep(label, resp)
        return resp.json()["messages"]

    def keep(self, label: str, resp: httpx.Response) -> None:
        """A reply that issued or rotated the session carries the token to use from now on."""
        if resp.headers.get("content-type", "").startswith("application/json"):
            token = resp.json().get("token") if isinstance(resp.json(), dict) else None
            if token:
                self.tokens[label] = token


def sender_id_of(stack, token: str) -> str:
    client = redis.Redis.from_url(stack.urls["redis"], decode_responses=True)
    try:
        sender = client.hget(f"anju:session:{hashlib.sha256(token.encode()).hexdigest()}", "sender_id")
    finally:
        client.close()
    assert sender, "no live session for this token"
    return sender


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)
