"""Restarting only the gateway of a running test stack with extra settings (the rest keeps running)."""
from contextlib import contextmanager

# Staff hours always open, loopback ICE for aiortc peers in a private network namespace.
ALWAYS_OPEN = {"HANDOFF_STAFF_HOURS": "00:00-24:00", "HANDOFF_STAFF_DAYS": "[1,2,3,4,5,6,7]",
               "VIDEO_LOOPBACK_ICE": "true", "HANDOFF_STAFF_RECONNECT_S": "1"}


@contextmanager
def gateway_with(stack, env: dict[str, str]):
    """Restarts only the gateway with extra settings; the rest of the stack keeps running."""
    saved = dict(stack.env_overrides)
    stack.env_overrides.update(env)
    stack.restart("gateway")
    try:
        yield stack
    finally:
        stack.env_overrides.clear()
        stack.env_overrides.update(saved)
        stack.restart("gateway")
