"""Media node directory on fakeredis: rooms stick to one node, new rooms spread, dead nodes get none."""
import pytest

from gateway.handoff import NodeDirectory, NoMediaNode


class Clock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


async def test_every_peer_of_a_room_goes_to_the_same_node_and_new_rooms_spread(redis):
    nodes = NodeDirectory(redis, Clock())
    await nodes.heartbeat("a", "http://127.0.0.1:1", rooms=0)
    await nodes.heartbeat("b", "http://127.0.0.1:2", rooms=0)
    first = await nodes.node_for("room1")
    assert (await nodes.node_for("room1")).node_id == first.node_id  # the staff peer follows the citizen
    second = await nodes.node_for("room2")
    assert second.node_id != first.node_id
    assert (await nodes.hosting("room2")).url == second.url


async def test_the_least_busy_node_gets_the_next_room(redis):
    nodes = NodeDirectory(redis, Clock())
    await nodes.heartbeat("busy", "http://127.0.0.1:1", rooms=5)
    await nodes.heartbeat("idle", "http://127.0.0.1:2", rooms=1)
    assert (await nodes.node_for("room1")).node_id == "idle"


async def test_a_silent_node_gets_no_rooms_and_its_rooms_move(redis):
    clock = Clock()
    nodes = NodeDirectory(redis, clock)
    await nodes.heartbeat("old", "http://127.0.0.1:1", rooms=0)
    assert (await nodes.node_for("room1")).node_id == "old"
    clock.t += 30
    with pytest.raises(NoMediaNode):
        await nodes.node_for("room2")
    await nodes.heartbeat("new", "http://127.0.0.1:2", rooms=0)
    assert (await nodes.node_for("room1")).node_id == "new"


async def test_a_node_that_leaves_takes_no_more_rooms(redis):
    nodes = NodeDirectory(redis, Clock())
    await nodes.heartbeat("a", "http://127.0.0.1:1", rooms=0)
    await nodes.leave("a")
    with pytest.raises(NoMediaNode):
        await nodes.node_for("room1")
