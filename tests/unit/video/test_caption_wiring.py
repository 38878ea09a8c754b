"""Captions wired into a room and a ticket (gateway/handoff/media.py, gateway/channels/video.py): either
side turns them on, the taps read the relayed Opus of the party's own SwitchableTrack, each recognised
line goes to the ticket's message stream for both pages, and off (or the end of the call) stops the taps."""
import asyncio

import fakeredis
import numpy as np
import pytest
from fastapi import HTTPException

from gateway.channels.video import citizen_frame
from gateway.handoff import HandoffDesk, VideoService
from gateway.handoff.captions import captions_key
from gateway.settings import Settings
from test_captions import PacketTrack, Recogniser, opus_packets, samples_of, silence
from video.rooms import RoomRegistry


@pytest.fixture
async def desk():
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield HandoffDesk(redis, Settings(_env_file=None, anju_env="test", redis_url="redis://127.0.0.1:1/0"))
    await redis.aclose()


async def active_ticket(desk):
    ticket = await desk.enqueue("web-a", priority=False, reason="request")
    return await desk.accept(ticket.id, "s1")


async def stream(desk, ticket_id):
    return [m for m in await desk.messages(ticket_id) if m.get("event")]


async def test_captions_on_recognise_the_citizen_into_the_stream_and_off_stops_the_taps(desk):
    ticket = await active_ticket(desk)
    recogniser = Recogniser("租房可以提取公积金吗，我电话13812345678")
    rooms = RoomRegistry([], None, relay_encoded=True)
    service = VideoService(desk, rooms, 20, transcriber=recogniser)
    with pytest.raises(HTTPException) as no_room:
        await service.set_captions(ticket, True, "staff")
    assert no_room.value.status_code == 409 and "接通" in no_room.value.detail

    room = rooms.open(ticket.room_id)
    await service.set_captions(ticket, True, "staff")
    state = (await stream(desk, ticket.id))[-1]
    assert citizen_frame(state) == {"type": "captions", "available": True, "on": True, "by": "staff"}

    # The citizen's browser sends its question; the room relays it (here, straight into its track).
    pcm = np.concatenate([silence(0.3), samples_of("rent_01.wav"), silence(1.0)])
    room.sources[("citizen", "audio")].set_source(PacketTrack(opus_packets(pcm)))
    for _ in range(500):
        if any(m["event"] == "caption" for m in await stream(desk, ticket.id)):
            break
        await asyncio.sleep(0.01)
    line = [m for m in await stream(desk, ticket.id) if m["event"] == "caption"][0]
    assert citizen_frame(line)["type"] == "caption" and line["from"] == "citizen"
    assert "13812345678" not in line["text"] and "138****5678" in line["text"]  # masked before it is sent or kept
    assert await desk._r.llen(captions_key(ticket.id)) == 1

    taps = list(service._captions[ticket.room_id].taps.values())
    await service.set_captions(ticket, False, "citizen")
    assert ticket.room_id not in service._captions and all(not t.running for t in taps)
    assert citizen_frame((await stream(desk, ticket.id))[-1]) == {"type": "captions", "available": True, "on": False,
                                                                  "by": "citizen"}
    await service.set_captions(ticket, True, "citizen")
    await service.close(ticket)  # the end of the call ends the captions too
    assert service._captions == {}


async def test_without_a_speech_server_captions_are_refused_in_words(desk):
    ticket = await active_ticket(desk)
    rooms = RoomRegistry([], None)
    rooms.open(ticket.room_id)
    with pytest.raises(HTTPException) as refused:
        await VideoService(desk, rooms, 20).set_captions(ticket, True, "staff")
    assert refused.value.status_code == 503 and refused.value.detail == "字幕服务暂时不可用。"
    await rooms.close_all()


def test_chat_messages_still_reach_the_citizen_as_messages():
    assert citizen_frame({"id": "1-0", "from": "staff", "text": "您好"}) == {"type": "message", "id": "1-0",
                                                                            "from": "staff", "text": "您好"}


async def test_with_media_nodes_the_toggle_goes_to_the_node_that_holds_the_room(desk):
    import httpx

    from gateway.handoff import NodeDirectory, NodeVideoService

    ticket = await active_ticket(desk)
    nodes = NodeDirectory(desk._r)
    service = NodeVideoService(desk, nodes, "node-token", 2.0)
    with pytest.raises(HTTPException) as not_placed:
        await service.set_captions(ticket, True, "staff")
    assert not_placed.value.status_code == 409
    await nodes.heartbeat("n1", "http://node.test", rooms=0)
    await nodes.node_for(ticket.room_id)
    seen = []

    def node(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers["authorization"], request.content))
        return httpx.Response(200, json={"on": True})

    service._http = httpx.AsyncClient(transport=httpx.MockTransport(node), headers={"Authorization": "Bearer node-token"})
    await service.set_captions(ticket, True, "citizen")
    assert seen == [(f"/node/tickets/{ticket.id}/captions", "Bearer node-token", b'{"on":true,"by":"citizen"}')]
    await service.aclose()
