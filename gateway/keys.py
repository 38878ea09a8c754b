"""Every redis key the gateway uses, built here: `anju:<area>:<id>`, with TTLs next to them.

Add new keys as functions in this module (never build key strings elsewhere).
"""
from __future__ import annotations

VAULT_TTL_S = 30 * 60


def vault(token: str) -> str:
    """Clear value of a PII token (ID or phone number) that replaced it in text sent to Rasa."""
    return f"anju:vault:{token}"


# --- video handoff (gateway/handoff.py, gateway/staff_auth.py) ---
HANDOFF_TICKET_TTL_S = 24 * 3600
STAFF_SESSION_TTL_S = 8 * 3600
STAFF_LOGIN_FAIL_TTL_S = 15 * 60
TOTP_USED_TTL_S = 120
STATS_TTL_S = 40 * 24 * 3600


def handoff_queue() -> str:
    """Sorted set of waiting ticket ids; score = priority class, then enqueue time (see gateway.handoff)."""
    return "anju:handoff:queue"


def handoff_ticket(ticket_id: str) -> str:
    """Hash with one ticket's state: sender, priority, times, staff, room, note."""
    return f"anju:handoff:ticket:{ticket_id}"


def handoff_sender(sender_id: str) -> str:
    """The open (waiting or in-session) ticket of a sender; one per sender."""
    return f"anju:handoff:sender:{sender_id}"


def handoff_presence(ticket_id: str) -> str:
    """Exists while the citizen is on the page, and for the grace period after they leave."""
    return f"anju:handoff:presence:{ticket_id}"


def handoff_messages(ticket_id: str) -> str:
    """Stream of the staff <-> citizen chat of one ticket, in order, for both sides to replay."""
    return f"anju:handoff:messages:{ticket_id}"


def handoff_events(ticket_id: str) -> str:
    """Short stream of a ticket's state changes; it only wakes the citizen's socket, so it holds no data."""
    return f"anju:handoff:events:{ticket_id}"


def staff_online() -> str:
    """Sorted set: staff username -> last heartbeat (s); staff seen in the last minute count as online."""
    return "anju:staff:online"


def handoff_offered(sender_id: str) -> str:
    """Set once the gateway offered video to an elder-mode sender, so the offer is not repeated."""
    return f"anju:handoff:offered:{sender_id}"


def handoff_bookings(slot: str) -> str:
    """Set of senders booked into one appointment slot (ISO start time)."""
    return f"anju:handoff:bookings:{slot}"


def video_room_token(token: str) -> str:
    """Single-use, expiring permission to join one room in one role."""
    return f"anju:video:token:{token}"


def audit_video() -> str:
    """Append-only stream of recording hashes, until the core exposes an audit API for them."""
    return "anju:audit:video"


def staff_session(token: str) -> str:
    return f"anju:staff:session:{token}"


def staff_login_failures(username: str) -> str:
    return f"anju:staff:login_fail:{username}"


def staff_totp_used(username: str, code: str) -> str:
    """Marks a TOTP code as spent, so a code seen once cannot log in again."""
    return f"anju:staff:totp_used:{username}:{code}"


def stats_day(day: str) -> str:
    """Hash of one day's counters: chats, handoffs, accepted, wait_ms_total."""
    return f"anju:stats:day:{day}"


def stats_senders(day: str) -> str:
    return f"anju:stats:senders:{day}"


def stats_unanswered(day: str) -> str:
    """Sorted set: masked question text -> times the bot could not answer it that day."""
    return f"anju:stats:unanswered:{day}"


# --- media nodes (gateway/handoff_nodes.py) ---
VIDEO_NODE_TTL_S = 10


def video_nodes() -> str:
    """Sorted set: media node id -> last heartbeat (s); a node silent for VIDEO_NODE_TTL_S is dead."""
    return "anju:video:nodes"


def video_node(node_id: str) -> str:
    """Hash with one media node's signaling URL and its number of open rooms (expires with the node)."""
    return f"anju:video:node:{node_id}"


def video_room_node(room_id: str) -> str:
    """The media node that hosts a room: every peer of the room goes there (room affinity)."""
    return f"anju:video:room_node:{room_id}"
