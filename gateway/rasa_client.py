"""Talks to `rasa run --enable-api` over the gateway channel (bot/gateway_channel.py) and HTTP API.

Turns go to /webhooks/gateway/webhook with the X-Anju-Gateway-Token header (Rasa refuses
them without it); /status and the tracker API use Rasa's --auth-token.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import httpx

from gateway.internal_http import internal_client

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/gateway/webhook"
GATEWAY_TOKEN_HEADER = "X-Anju-Gateway-Token"


class RasaUnavailable(Exception):
    """Rasa could not be reached, timed out, or failed."""


class RasaClient:
    def __init__(self, base_url: str, token: str, timeout_s: float, gateway_token: str = "",
                 transport: Optional[httpx.AsyncBaseTransport] = None):
        self._token = token
        self._webhook_headers = {GATEWAY_TOKEN_HEADER: gateway_token}
        self._http = internal_client(base_url=base_url, timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, sender_id: str, text: str, metadata: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
        """One user turn; returns the bot's messages (text, buttons, custom payloads)."""
        payload = {"sender": sender_id, "message": text, "metadata": metadata or {}}
        try:
            resp = await self._http.post(WEBHOOK_PATH, json=payload, headers=self._webhook_headers)
            resp.raise_for_status()
            return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("rasa.send.failed error=%s", type(exc).__name__)
            raise RasaUnavailable(str(exc)) from exc

    async def ready(self) -> bool:
        """True when Rasa answers and has a model loaded."""
        try:
            resp = await self._http.get("/status", params={"token": self._token}, timeout=2.0)
            return resp.status_code == 200 and bool(resp.json().get("model_file"))
        except (httpx.HTTPError, ValueError):
            return False

    async def tracker_events(self, sender_id: str) -> list[dict[str, Any]]:
        resp = await self._http.get(f"/conversations/{sender_id}/tracker", params={"token": self._token})
        resp.raise_for_status()
        return resp.json().get("events", [])

    async def reset_verification(self, sender_id: str) -> None:
        """Appends slot resets to the tracker, without a user turn: the bot forgets who was verified."""
        events = [{"event": "slot", "name": name, "value": value} for name, value in (
            ("verified", False), ("person_ref", None), ("age", None), ("elderly", None), ("disabled", None))]
        try:
            resp = await self._http.post(f"/conversations/{sender_id}/tracker/events", json=events,
                                         params={"token": self._token})
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise RasaUnavailable(str(exc)) from exc
