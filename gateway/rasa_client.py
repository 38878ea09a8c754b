"""Talks to `rasa run --enable-api` over the gateway channel (bot/gateway_channel.py) and HTTP API.

Turns go to /webhooks/gateway/webhook with the X-Anju-Gateway-Token header (Rasa refuses
them without it); /status and the tracker API use Rasa's --auth-token.

Several Rasa processes may serve one gateway (RASA_URL="http://a,http://b": one per core, issue
20). They share the tracker and lock stores in redis, so any of them can take any conversation;
a conversation is still routed to one of them by a hash of its sender id, which keeps the
lock store uncontended and each process's caches warm. A Rasa that refuses the connection
(restarting, killed) is skipped for the next one: the turn was never sent, so nothing repeats.
"""
from __future__ import annotations

import logging
import zlib
from typing import Any, Optional, Sequence, Union

import httpx

from gateway.internal_http import internal_client

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/gateway/webhook"
GATEWAY_TOKEN_HEADER = "X-Anju-Gateway-Token"


class RasaUnavailable(Exception):
    """Rasa could not be reached, timed out, or failed."""


class RasaClient:
    def __init__(self, base_url: Union[str, Sequence[str]], token: str, timeout_s: float, gateway_token: str = "",
                 transport: Optional[httpx.AsyncBaseTransport] = None):
        """`base_url`: one URL, several separated by commas, or a list of them."""
        urls = [u.strip().rstrip("/") for u in (base_url.split(",") if isinstance(base_url, str) else base_url)]
        urls = [u for u in urls if u]
        if not urls:
            raise ValueError("RASA_URL names no Rasa server")
        self._token = token
        self._webhook_headers = {GATEWAY_TOKEN_HEADER: gateway_token}
        self._http = [internal_client(base_url=u, timeout=timeout_s, transport=transport) for u in urls]

    def home_of(self, sender_id: str) -> int:
        """The process a conversation goes to while it is up (the same in every gateway replica)."""
        return zlib.crc32(sender_id.encode("utf-8")) % len(self._http)

    async def aclose(self) -> None:
        for http in self._http:
            await http.aclose()

    async def _request(self, sender_id: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """To the conversation's own Rasa, or the next one when it refuses the connection."""
        home = self.home_of(sender_id)
        order = self._http[home:] + self._http[:home]
        for position, http in enumerate(order):
            try:
                return await http.request(method, path, **kwargs)
            except httpx.ConnectError:
                if position == len(order) - 1:
                    raise
                logger.warning("rasa.skipped server=%d reason=connect", (home + position) % len(order))
        raise AssertionError("unreachable")

    async def send(self, sender_id: str, text: str, metadata: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
        """One user turn; returns the bot's messages (text, buttons, custom payloads)."""
        payload = {"sender": sender_id, "message": text, "metadata": metadata or {}}
        try:
            resp = await self._request(sender_id, "POST", WEBHOOK_PATH, json=payload, headers=self._webhook_headers)
            resp.raise_for_status()
            return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("rasa.send.failed error=%s", type(exc).__name__)
            raise RasaUnavailable(str(exc)) from exc

    async def ready(self) -> bool:
        """True when a Rasa answers with its model loaded: turns can be served (one that refuses
        connections is skipped), so a load balancer keeps this gateway while one Rasa restarts."""
        for http in self._http:
            try:
                resp = await http.get("/status", params={"token": self._token}, timeout=2.0)
                if resp.status_code == 200 and resp.json().get("model_file"):
                    return True
            except (httpx.HTTPError, ValueError):
                continue
        return False

    async def tracker_events(self, sender_id: str) -> list[dict[str, Any]]:
        resp = await self._request(sender_id, "GET", f"/conversations/{sender_id}/tracker",
                                   params={"token": self._token})
        resp.raise_for_status()
        return resp.json().get("events", [])

    async def reset_verification(self, sender_id: str) -> None:
        """Appends slot resets to the tracker, without a user turn: the bot forgets who was verified."""
        events = [{"event": "slot", "name": name, "value": value} for name, value in (
            ("verified", False), ("person_ref", None), ("age", None), ("elderly", None), ("disabled", None))]
        try:
            resp = await self._request(sender_id, "POST", f"/conversations/{sender_id}/tracker/events",
                                       json=events, params={"token": self._token})
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise RasaUnavailable(str(exc)) from exc
