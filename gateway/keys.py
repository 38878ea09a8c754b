"""Every redis key the gateway uses, built here: `anju:<area>:<id>`, with TTLs next to them.

Add new keys as functions in this module (never build key strings elsewhere).
"""
from __future__ import annotations

VAULT_TTL_S = 30 * 60


def vault(token: str) -> str:
    """Clear value of a PII token (ID, phone, card number or name) that replaced it in text sent to Rasa."""
    return f"anju:vault:{token}"


def vault_masked(token: str) -> str:
    """Masked value of a PII token (340***********1234), shown to staff in its place; same TTL."""
    return f"anju:vault_masked:{token}"


# --- chat sessions (gateway/sessions.py) ---
def chat_session(digest: str) -> str:
    """Hash of one chat session (sender_id, channel, times), keyed by the sha256 of its id, never the id."""
    return f"anju:session:{digest}"


def rate(scope: str, subject: str, window: int) -> str:
    """Hits of one subject (session digest or IP) in one fixed window of a rate limit (gateway/limits.py)."""
    return f"anju:rate:{scope}:{subject}:{window}"


def chat_expects_name(sender_id: str) -> str:
    """Set while the bot's last question asked for the citizen's name, so the answer is tokenised."""
    return f"anju:chat:expects_name:{sender_id}"


# --- video handoff (gateway/handoff/, gateway/staff_auth.py) ---
HANDOFF_TICKET_TTL_S = 24 * 3600
STAFF_SESSION_TTL_S = 8 * 3600
STAFF_LOGIN_FAIL_TTL_S = 15 * 60
TOTP_USED_TTL_S = 120
STATS_TTL_S = 40 * 24 * 3600


def handoff_queue() -> str:
    """Sorted set of waiting ticket ids; score = priority class, then enqueue time (see gateway.handoff.desk)."""
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


def stats_clarified(day: str) -> str:
    """Sorted set: masked question text -> times the bot had to ask which topic was meant that day."""
    return f"anju:stats:clarified:{day}"


def stats_unanswered(day: str) -> str:
    """Sorted set: masked question text -> times the bot could not answer it that day."""
    return f"anju:stats:unanswered:{day}"


# --- media nodes (gateway/handoff/nodes.py) ---
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


# --- staff login lockout (gateway/staff_auth.py) and parked audit records (gateway/audit_client.py) ---
STAFF_KNOWN_IP_TTL_S = 30 * 24 * 3600


def staff_login_ip_failures(ip: str) -> str:
    """Failed staff logins from one client IP in the current window (expires with STAFF_LOGIN_FAIL_TTL_S)."""
    return f"anju:staff:login_fail_ip:{ip}"


def staff_known_ip(username: str, ip: str) -> str:
    """Set when an account logged in from an IP; such an IP is spared the account-wide lock."""
    return f"anju:staff:known_ip:{username}:{ip}"


def audit_parked() -> str:
    """Stream of audit records the core could not take yet, oldest first; never expires (drained by AuditClient)."""
    return "anju:audit:parked"


def audit_rejected() -> str:
    """Stream of parked audit records the core refused for good (4xx), kept for an operator to inspect."""
    return "anju:audit:rejected"


# --- handoff upkeep: staff who never join, restarts, recording retention (gateway/handoff/) ---
def handoff_active() -> str:
    """Sorted set: active ticket id -> accept time (ms); the sweep for staff who never joined reads it."""
    return "anju:handoff:active"


def handoff_ticket_match() -> str:
    """SCAN pattern of every ticket hash: the restart reconciliation also finds tickets the index lacks."""
    return "anju:handoff:ticket:*"


def video_recording_deletion(file_name: str) -> str:
    """Claimed by the one process (gateway or media node) that deletes and audits an expired recording."""
    return f"anju:video:recording_deletion:{file_name}"


# --- WeChat (gateway/wechat/) ---
WECHAT_SEEN_TTL_S = 10 * 60          # WeChat retries a push three times within about 15 s
WECHAT_CHOICES_TTL_S = 30 * 60
WECHAT_MUTED_TTL_S = 48 * 3600       # the customer-service reply window; a new message lifts it sooner


def wechat_inbox() -> str:
    """Stream of pushed messages, queued before WeChat is answered "success"; a consumer group drains it."""
    return "anju:wechat:inbox"


def wechat_seen(dedupe_id: str) -> str:
    """Set the first time a MsgId (or an event's FromUserName+CreateTime) is queued, so a retried push is not."""
    return f"anju:wechat:seen:{dedupe_id}"


def wechat_access_token() -> str:
    """The shared customer-service access_token, kept for less than its lifetime so it is renewed early."""
    return "anju:wechat:access_token"


def wechat_access_token_lock() -> str:
    """Held by the one process that asks WeChat for a new access_token (expires after a few seconds)."""
    return "anju:wechat:access_token:lock"


def wechat_choices(sender_id: str) -> str:
    """Hash: number the citizen may reply with -> the button payload it stands for (last reply's buttons)."""
    return f"anju:wechat:choices:{sender_id}"


def wechat_muted(openid_digest: str) -> str:
    """Set when WeChat refused more messages to a user (45015/45047); sending stops until they write again."""
    return f"anju:wechat:muted:{openid_digest}"


WECHAT_CARD_THUMB_TTL_S = 60 * 3600   # WeChat keeps an uploaded temporary image for 3 days


def wechat_card_thumb() -> str:
    """media_id of the video card's cover image, uploaded once and reused until shortly before WeChat drops it."""
    return "anju:wechat:card_thumb"


def wechat_relays() -> str:
    """Set of handoff tickets whose citizen came through the message push and hears about them there."""
    return "anju:wechat:relays"


def wechat_relay(ticket_id: str) -> str:
    """Hash: the relayed citizen's openid and how far they were told (stream ids, queue position, state)."""
    return f"anju:wechat:relay:{ticket_id}"


def wechat_relay_lease(ticket_id: str) -> str:
    """Held (a few seconds, renewed) by the one gateway process that relays a ticket to WeChat."""
    return f"anju:wechat:relay_lease:{ticket_id}"
