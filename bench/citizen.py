"""One simulated citizen of a bench: a gateway-issued session token, kept across rotation, as a real
API client keeps it. Benches lift the gateway's rate limits (LIFTED_LIMITS) and say so in their
output: they measure capacity, and one machine's loopback is one client IP for every user."""
from __future__ import annotations

from typing import Optional

import httpx

LIFTED_LIMITS = {"RATE_CHAT_SESSION": "100000/60", "RATE_CHAT_IP": "1000000/60", "RATE_SESSION_NEW_IP": "100000/60"}


class BenchCitizen:
    def __init__(self) -> None:
        self.token: Optional[str] = None

    async def say(self, client: httpx.AsyncClient, text: str) -> httpx.Response:
        if self.token is None:
            self.token = (await client.post("/api/session")).json()["token"]
        resp = await client.post("/api/chat", json={"text": text}, headers={"Authorization": f"Bearer {self.token}"})
        if resp.status_code == 200 and resp.json().get("token"):
            self.token = resp.json()["token"]  # rotated after identity verification
        return resp
