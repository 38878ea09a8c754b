"""Decoded video reaches each consumer of a room's track as a copy of its own: encoders rewrite frames."""
import asyncio
import fractions
import time

from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.contrib.media import MediaRelay
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VideoStreamTrack
from av import VideoFrame

from video.tracks import PrivateFrameTrack, SwitchableTrack, copy_of


def decoded_vp8_frame(width, height):
    """A frame as aiortc's receiver hands it on: libvpx pads its rows unlike a new VideoFrame does."""
    frame = VideoFrame(width, height, "yuv420p")
    for index, plane in enumerate(frame.planes):
        plane.update(bytes((index * 40 + i) % 256 for i in range(plane.buffer_size)))
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    payloads, timestamp = Vp8Encoder().encode(frame, True)
    encoded = b"".join(vp8_depayload(p) for p in payloads)
    decoded = Vp8Decoder().decode(JitterFrame(data=encoded, timestamp=timestamp))[0]
    decoded.pts, decoded.time_base = 4242, fractions.Fraction(1, 90000)
    return decoded


def pixel_rows(frame):
    return [bytes(memoryview(plane)[row * plane.line_size:row * plane.line_size + plane.width])
            for plane in frame.planes for row in range(plane.height)]


async def test_one_consumers_encoder_leaves_the_frames_of_another_consumer_alone():
    """PyAV rescales a frame's pts in place to its encoder's time base: sharing one frame between the
    recorder and aiortc's sender broke the sender's timestamps, and libvpx then stopped it for good."""
    relay = MediaRelay()
    source = SwitchableTrack("video", time.monotonic())
    source.set_source(VideoStreamTrack())
    recorder_feed, sender_feed = (PrivateFrameTrack(relay.subscribe(source, buffered=False)) for _ in range(2))
    try:
        recorded, sent = await asyncio.gather(recorder_feed.recv(), sender_feed.recv())
        stamp = (recorded.pts, recorded.time_base)
        assert sent is not recorded and (sent.pts, sent.time_base) == stamp
        Vp8Encoder().encode(sent)
        assert (recorded.pts, recorded.time_base) == stamp
    finally:
        recorder_feed.stop()
        sender_feed.stop()
        source.stop()


def test_a_copy_has_the_same_picture_and_timestamp_however_its_rows_are_padded():
    for width, height in ((640, 480), (321, 241)):
        original = decoded_vp8_frame(width, height)
        copy = copy_of(original)
        assert (copy.width, copy.height, copy.format.name) == (width, height, "yuv420p")
        assert pixel_rows(copy) == pixel_rows(original)
        assert (copy.pts, copy.time_base) == (original.pts, original.time_base)
