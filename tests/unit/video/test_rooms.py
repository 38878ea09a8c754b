"""Rooms relay both peers' media and record it; a dropped peer can rejoin. Run inside `unshare -n`."""
import asyncio
import json
import shutil
import subprocess

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from video import passthrough
from video.loopback import allow_loopback_candidates
from video.rooms import BadOffer, RoomRegistry

allow_loopback_candidates()


class Browser:
    """Stands in for one browser: sends synthetic camera and mic, counts what comes back."""

    def __init__(self):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.received = {"audio": 0, "video": 0}
        self.video_size = None
        self.pc.addTrack(AudioStreamTrack())
        self.pc.addTrack(VideoStreamTrack())
        self._readers = []

        @self.pc.on("track")
        def on_track(track):
            self._readers.append(asyncio.ensure_future(self._read(track)))
            if track.kind == "video":
                self._readers.append(asyncio.ensure_future(self._ask_for_keyframe_until_decoding()))

    async def _ask_for_keyframe_until_decoding(self):
        """Like Chrome, keep sending PLI until video decodes (aiortc's own receiver asks only once)."""
        while self.received["video"] == 0:
            await asyncio.sleep(0.5)
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind == "video":
                    for source in transceiver.receiver.getSynchronizationSources():
                        await transceiver.receiver._send_rtcp_pli(source.source)

    async def _read(self, track):
        while True:
            frame = await track.recv()
            self.received[track.kind] += 1
            if track.kind == "video":
                self.video_size = (frame.width, frame.height)

    async def join(self, room, role):
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await room.join(role, self.pc.localDescription.sdp, "offer")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type=answer.type))

    async def close(self):
        for r in self._readers:
            r.cancel()
        await self.pc.close()


async def wait_for(predicate, timeout=30.0):
    """Media can take several seconds when a DTLS or ICE packet is retransmitted (1 s, 2 s, 4 s back-off)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")
async def test_both_peers_receive_each_others_media_and_the_session_is_recorded(tmp_path):
    registry = RoomRegistry([], tmp_path)
    room = registry.open("room1")
    citizen, staff = Browser(), Browser()
    try:
        await citizen.join(room, "citizen")
        await staff.join(room, "staff")
        await wait_for(lambda: min(citizen.received.values()) > 5 and min(staff.received.values()) > 5)
        assert staff.video_size == (640, 480)
    finally:
        await citizen.close()
        await staff.close()
        recording = await registry.close("room1")
    assert recording is not None and recording.size_bytes > 0
    info = probe(recording.path)
    kinds = sorted(s["codec_type"] for s in info["streams"])
    assert kinds == ["audio", "audio", "video", "video"]
    assert float(info["format"]["duration"]) > 0
    assert len(registry) == 0


async def test_a_peer_that_rejoins_gets_media_again_without_the_other_side_reconnecting(tmp_path):
    registry = RoomRegistry([], None)
    room = registry.open("room2")
    citizen, staff = Browser(), Browser()
    staff_again = Browser()
    try:
        await citizen.join(room, "citizen")
        await staff.join(room, "staff")
        await wait_for(lambda: staff.received["video"] > 3)
        await staff.close()
        await staff_again.join(room, "staff")
        before = citizen.received["video"]
        await wait_for(lambda: staff_again.received["video"] > 3 and citizen.received["video"] > before + 3)
    finally:
        await citizen.close()
        await staff_again.close()
        await registry.close_all()


async def test_a_garbage_offer_is_refused_and_leaves_no_peer_behind():
    registry = RoomRegistry([], None)
    room = registry.open("room3")
    with pytest.raises(BadOffer):
        await room.join("citizen", "v=0\r\nthis is not sdp\r\n", "offer")
    assert room.peers == {}
    await registry.close_all()


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")
async def test_an_encoded_relay_forwards_media_both_ways_and_records_it_without_re_encoding(tmp_path):
    registry = RoomRegistry([], tmp_path, relay_encoded=True)
    room = registry.open("room4")
    citizen, staff = Browser(), Browser()
    try:
        await citizen.join(room, "citizen")
        await staff.join(room, "staff")
        await wait_for(lambda: min(citizen.received.values()) > 5 and min(staff.received.values()) > 5)
        assert staff.video_size == (640, 480)
        # the room got the browsers' packets, not decoded frames, for all four streams
        assert all(passthrough.is_marked(t.receiver) for pc in room.peers.values() for t in pc.getTransceivers())
    finally:
        await citizen.close()
        await staff.close()
        recording = await registry.close("room4")
    info = probe(recording.path)
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    assert [s["codec_name"] for s in video] == ["vp8", "vp8"]
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "audio", "video", "video"]
    assert float(info["format"]["duration"]) > 0
    decoded = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                              "stream=nb_read_frames", "-of", "csv=p=0", str(recording.path)], capture_output=True, text=True)
    assert decoded.stderr == "" and int(decoded.stdout) > 5  # every frame decodes: it starts at a keyframe


async def test_an_encoded_relay_asks_browsers_to_cap_their_video_bitrate():
    registry = RoomRegistry([], None, relay_encoded=True)
    citizen = Browser()
    try:
        await citizen.pc.setLocalDescription(await citizen.pc.createOffer())
        answer = await registry.open("room5").join("citizen", citizen.pc.localDescription.sdp)
        audio, video = answer.sdp.split("m=audio")[1].split("m=video")
        assert "b=AS:600" in video and "b=AS" not in audio
        await citizen.pc.setRemoteDescription(answer)  # still an answer the browser accepts
    finally:
        await citizen.close()
        await registry.close_all()
