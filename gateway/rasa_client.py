"""Talks to `rasa run --enable-api` over its REST channel and HTTP API."""
from __future__ import annotations

import logging
from typing import Any, Optional

import httpx

logger = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa could not be reached, timed out, or failed."""


class RasaClient:
    def __init__(self, base_url: str, token: str, timeout_s: float, transport: Optional[httpx.AsyncBaseTransport] = None):
        self._token = token
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, sender_id: str, text: str, metadata: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
        """One user turn; returns the bot's messages (text, buttons, custom payloads)."""
        payload = {"sender": sender_id, "message": text, "metadata": metadata or {}}
        try:
            resp = await self._http.post("/webhooks/rest/webhook", json=payload)
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
