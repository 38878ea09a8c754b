"""Test-only: let aioice offer 127.0.0.1, which it never gathers, for loopback-only test networks."""
from __future__ import annotations

import aioice.ice

_original = aioice.ice.get_host_addresses


def allow_loopback_candidates() -> None:
    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = _original(use_ipv4, use_ipv6)
        return addresses + ["127.0.0.1"] if use_ipv4 and "127.0.0.1" not in addresses else addresses

    aioice.ice.get_host_addresses = with_loopback
