"""Media on two media node processes instead of the gateway: calls spread over the nodes, both peers
of a call meet on one node, and each node records and audits its own calls. Real stack as in
test_handoff_stack.py (whose helpers this reuses); run inside `unshare -n` like it.
"""
import httpx
import pytest

from test_handoff_stack import (ALWAYS_OPEN, CitizenSocket, Peer, assert_recording_in_audit_chain, customs, say,
                                sender, staff_api, until)
from video.loopback import allow_loopback_candidates

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node_stack(stack):
    allow_loopback_candidates()
    saved = dict(stack.env_overrides)
    names = stack.add_media_nodes(2)
    stack.env_overrides.update({**ALWAYS_OPEN, "VIDEO_RECORDINGS_DIR": str(stack.data_dir / "recordings")})
    try:
        for name in names:
            stack.start_one(name)
        stack.restart("gateway")
        yield stack
    finally:
        stack.remove_media_nodes()
        stack.env_overrides.clear()
        stack.env_overrides.update(saved)
        stack.restart("gateway")


def rooms_per_node(stack) -> list[int]:
    return sorted(httpx.get(s.health_url, timeout=5).json()["rooms"] for n, s in stack.services.items()
                  if n.startswith("media-"))


async def test_two_calls_run_on_two_media_nodes_and_both_are_recorded(node_stack):
    from test_handoff_stack import DEV_STAFF_ACCOUNTS, pyotp  # one login per module: TOTP codes work once

    account = DEV_STAFF_ACCOUNTS[1]
    login = httpx.post(f"{node_stack.urls['gateway']}/api/staff/login", timeout=10, json={
        "username": account.username, "password": "dev-super-pass",
        "totp": pyotp.TOTP(account.totp_secret.get_secret_value()).now()})
    assert login.status_code == 200, login.text
    async with httpx.AsyncClient(base_url=node_stack.urls["gateway"]) as http, \
            staff_api(node_stack, login.json()["token"]) as staff:
        tickets = [customs(await say(http, sender(f"node{i}"), "转人工"), "handoff_queued")[0] for i in range(2)]
        peers, sockets, accepted = [], [], []
        try:
            for ticket in tickets:
                ws = await CitizenSocket(node_stack.urls["gateway"], ticket).__aenter__()
                sockets.append(ws)
                accepted.append((await staff.post(f"/api/staff/tickets/{ticket['ticket_id']}/accept")).json())
                call = await ws.agree_and_call()
                citizen, staff_peer = Peer(), Peer()
                peers += [citizen, staff_peer]
                await citizen.join(http, call["room_token"])
                await staff_peer.join(http, accepted[-1]["room_token"])

            async def everyone_sees_and_hears():
                return all(min(p.received.values()) > 5 for p in peers)
            await until(everyone_sees_and_hears, timeout=20, what="media in both calls")
            assert rooms_per_node(node_stack) == [1, 1]

            for ticket in tickets:
                end = await staff.post(f"/api/staff/tickets/{ticket['ticket_id']}/end", json={"note": "内部备注", "summary": "已办结"})
                assert end.status_code == 200
            assert rooms_per_node(node_stack) == [0, 0]
        finally:
            for peer in peers:
                await peer.close()
            for ws in sockets:
                await ws.__aexit__(None, None, None)
    for ticket, grant in zip(tickets, accepted):
        assert_recording_in_audit_chain(node_stack, ticket["ticket_id"], grant)
