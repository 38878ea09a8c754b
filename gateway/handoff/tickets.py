"""A ticket as stored in redis: the desk writes tickets, figures and media read them,
so they live apart from all three."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional


class TicketState(str, enum.Enum):
    WAITING = "waiting"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


@dataclass
class Ticket:
    id: str
    sender_id: str
    key: str
    priority: bool
    reason: str
    state: TicketState
    created_ms: int
    staff: str = ""
    room_id: str = ""
    accepted_ms: int = 0
    note: str = ""  # staff's closing note: internal, never shown to the citizen
    summary: str = ""  # what staff wrote for the citizen at the end
    consent: Optional[bool] = None  # the citizen's answer to recording, None until asked and answered
    consent_ms: int = 0
    staff_joined_ms: int = 0  # the staff peer's last join; before accepted_ms means not since this accept

    @classmethod
    def from_hash(cls, ticket_id: str, h: dict[str, str]) -> "Ticket":
        return cls(id=ticket_id, sender_id=h["sender_id"], key=h["key"], priority=h["priority"] == "1",
                   reason=h.get("reason", ""), state=TicketState(h["state"]), created_ms=int(h["created_ms"]),
                   staff=h.get("staff", ""), room_id=h.get("room_id", ""),
                   accepted_ms=int(h.get("accepted_ms") or 0), note=h.get("note", ""), summary=h.get("summary", ""),
                   consent={"1": True, "0": False}.get(h.get("consent", "")), consent_ms=int(h.get("consent_ms") or 0),
                   staff_joined_ms=int(h.get("staff_joined_ms") or 0))
