"""Video handoff capacity: sessions per machine at 640x480@15 with frame rate held, CPU per session,
setup time from accept to the first decodable video frame on both sides, recording size per minute.

Media processes (video.rooms.RoomRegistry behind a one-POST endpoint, like a media node) run as
child processes so their CPU is measured alone; rooms are spread over them with room affinity.
The synthetic "browsers" run in this process and send pre-encoded VP8 + Opus (a browser's encoder
runs on the citizen's machine, not ours), honour keyframe requests and do not decode what they
receive: they count whole frames. `--relay transcode` is aiortc's default (decode + re-encode
per stream); `--relay encoded` forwards the browsers' packets (video.passthrough).
Run inside a private network namespace:
  unshare -n sh -c 'ip link set lo up; python bench/video_sessions.py --relay encoded --nodes 2 --sessions 4 8 12'
Prints one JSON line per load level with the load average beside it; nothing is asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import httpx  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import MediaStreamTrack  # noqa: E402

from video import passthrough  # noqa: E402

FPS, WIDTH, HEIGHT, LOOP_FRAMES = 15, 640, 480, 150
TICKS = os.sysconf("SC_CLK_TCK")


def encode_clip() -> tuple[list[bytes], list[bytes], list[bytes]]:
    """A 10 s moving 640x480 VP8 clip (delta frames, and each frame also as a keyframe) and 20 ms Opus tone packets."""
    def picture(n: int) -> av.VideoFrame:
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(bytes((((x + n * 8) // 40) % 2) * 200 + 20 for x in range(WIDTH)) * HEIGHT)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        return frame

    def encoder(gop: int) -> av.CodecContext:
        ctx = av.CodecContext.create("libvpx", "w")
        ctx.width, ctx.height, ctx.pix_fmt, ctx.bit_rate, ctx.gop_size = WIDTH, HEIGHT, "yuv420p", 500_000, gop
        ctx.framerate, ctx.options = FPS, {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        return ctx

    deltas, keys = encoder(10_000), encoder(1)
    delta_frames, key_frames = [], []
    for n in range(LOOP_FRAMES):
        for ctx, out in ((deltas, delta_frames), (keys, key_frames)):
            frame = picture(n)
            frame.pts = n
            out.append(b"".join(bytes(p) for p in ctx.encode(frame)))
    opus = av.CodecContext.create("libopus", "w")
    opus.sample_rate, opus.layout, opus.format, opus.bit_rate = 48000, "stereo", "s16", 32000
    tone = []
    for n in range(50):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes((n * 7 + i) % 64 for i in range(960 * 4)))
        frame.sample_rate, frame.pts = 48000, n * 960
        tone.extend(bytes(p) for p in opus.encode(frame))
    return delta_frames, key_frames, tone


class ClipTrack(MediaStreamTrack):
    """Sends the pre-encoded clip in real time; `want_keyframe()` makes the next frame a keyframe, as a browser does on PLI."""

    def __init__(self, kind: str, clip: tuple[list[bytes], list[bytes], list[bytes]]):
        super().__init__()
        self.kind = kind
        self._deltas, self._keys, self._tone = clip
        self._n, self._start, self._key_next = 0, None, True

    def want_keyframe(self) -> None:
        self._key_next = True

    async def recv(self) -> av.Packet:
        self._start = self._start or time.monotonic()
        step = 1 / FPS if self.kind == "video" else 0.02
        self._n += 1
        wait = self._start + self._n * step - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self.kind == "audio":
            packet = av.Packet(self._tone[self._n % len(self._tone)])
            packet.pts, packet.time_base = self._n * 960, fractions.Fraction(1, 48000)
            return packet
        i = self._n % LOOP_FRAMES
        data = self._keys[i] if self._key_next or i == 0 else self._deltas[i]
        self._key_next = False
        packet = av.Packet(data)
        packet.pts, packet.time_base = self._n * (90000 // FPS), fractions.Fraction(1, 90000)
        return packet


class Peer:
    def __init__(self, clip):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ClipTrack("audio", clip))
        video = ClipTrack("video", clip)
        self.pc.addTrack(video)._send_keyframe = video.want_keyframe  # honour PLI (private hook, see video.passthrough)
        self.frames: list[float] = []
        self.first_keyframe_at: float | None = None
        self._tasks = []

        @self.pc.on("track")
        def on_track(track):
            receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
            passthrough.mark(receiver)  # count whole frames, do not decode them
            self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track):
        while True:
            packet = await track.recv()
            if track.kind == "video":
                now = time.monotonic()
                if self.first_keyframe_at is None and packet.is_keyframe:
                    self.first_keyframe_at = now
                self.frames.append(now)

    async def join(self, http: httpx.AsyncClient, room: str, role: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await http.post("/offer", json={"room": room, "role": role, "sdp": self.pc.localDescription.sdp})
        resp.raise_for_status()
        await self.pc.setRemoteDescription(RTCSessionDescription(**resp.json()))

    def gaps_ms(self, since: float, until: float) -> list[float]:
        window = [t for t in self.frames if since <= t < until]
        return [(b - a) * 1000 for a, b in zip(window, window[1:])]

    def fps(self, since: float, until: float) -> float:
        return len([t for t in self.frames if since <= t < until]) / (until - since)

    async def close(self):
        for t in self._tasks:
            t.cancel()
        await self.pc.close()


def serve(port: int, recordings: str, relay: str) -> None:
    """One media process: a RoomRegistry behind POST /offer and POST /close, as a media node."""
    import uvicorn
    from fastapi import FastAPI

    from video.loopback import allow_loopback_candidates
    from video.rooms import RoomRegistry

    allow_loopback_candidates()
    app = FastAPI()
    registry = RoomRegistry([], Path(recordings) if recordings else None, relay_encoded=relay == "encoded")

    @app.post("/offer")
    async def offer(body: dict):
        answer = await registry.open(body["room"]).join(body["role"], body["sdp"])
        return {"sdp": answer.sdp, "type": answer.type}

    @app.post("/close")
    async def close():
        rooms = [(registry.get(r), time.monotonic()) for r in list(registry._rooms)]
        done = [(await registry.close(room.room_id), at - room.created_at) for room, at in rooms]
        return {"recordings": [{"bytes": r.size_bytes, "seconds": s} for r, s in done if r]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def run_level(nodes: list[tuple[int, int]], sessions: int, seconds: float, clip) -> dict:
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) for port, _ in nodes]
    pairs = [(Peer(clip), Peer(clip)) for _ in range(sessions)]
    setup, load_before = [], os.getloadavg()[0]
    try:
        for i, (citizen, staff) in enumerate(pairs):
            http = clients[i % len(clients)]  # room affinity: every peer of room i goes to one process
            accepted = time.monotonic()  # staff accepts: both browsers send their offers now
            await asyncio.gather(citizen.join(http, f"bench{i}", "citizen"), staff.join(http, f"bench{i}", "staff"))
            deadline = time.monotonic() + 10
            while not (citizen.first_keyframe_at and staff.first_keyframe_at) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            if citizen.first_keyframe_at and staff.first_keyframe_at:
                setup.append(max(citizen.first_keyframe_at, staff.first_keyframe_at) - accepted)
        await asyncio.sleep(2)  # settle
        start, cpu0, own0 = time.monotonic(), sum(cpu_seconds(pid) for _, pid in nodes), self_cpu()
        await asyncio.sleep(seconds)
        end = time.monotonic()
        cpu = (sum(cpu_seconds(pid) for _, pid in nodes) - cpu0) / (end - start)
        own = (self_cpu() - own0) / (end - start)
        fps = [p.fps(start, end) for pair in pairs for p in pair]
        gaps = sorted(g for pair in pairs for p in pair for g in p.gaps_ms(start, end))
        load = os.getloadavg()[0]
    finally:
        for citizen, staff in pairs:
            await citizen.close()
            await staff.close()
        recordings = [r for http in clients for r in (await http.post("/close")).json()["recordings"]]
        for http in clients:
            await http.aclose()
    setup.sort()
    mb_per_min = [r["bytes"] / 1e6 * 60 / r["seconds"] for r in recordings]
    return {"sessions": sessions, "nodes": len(nodes), "setup_ms_median": round(setup[len(setup) // 2] * 1000) if setup else None,
            "setup_ms_max": round(setup[-1] * 1000) if setup else None, "setups_ok": len(setup),
            "fps_min": round(min(fps), 1), "fps_mean": round(sum(fps) / len(fps), 1),
            "frame_gap_ms_p99": round(gaps[int(len(gaps) * 0.99)]) if gaps else None,
            "media_cpu_cores": round(cpu, 2), "cpu_per_session": round(cpu / sessions, 3),
            "browsers_cpu_cores": round(own, 2),
            "recording_mb_per_min": round(sum(mb_per_min) / len(mb_per_min), 2) if mb_per_min else None,
            "load_avg_1m": [round(load_before, 1), round(load, 1)]}


def start_nodes(count: int, recordings: str, relay: str) -> list[tuple[subprocess.Popen, int]]:
    nodes = []
    for _ in range(count):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        nodes.append((subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--recordings", recordings,
                                        "--relay", relay], cwd=ROOT), port))
    for _proc, port in nodes:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(f"http://127.0.0.1:{port}/close", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
    return nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--nodes", type=int, default=1, help="media processes")
    parser.add_argument("--relay", choices=["encoded", "transcode"], default="encoded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--recordings", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.recordings, args.relay)
        return
    from video.loopback import allow_loopback_candidates
    allow_loopback_candidates()
    passthrough.install()
    clip = encode_clip()
    with tempfile.TemporaryDirectory() as tmp:
        nodes = start_nodes(args.nodes, "" if args.no_record else tmp, args.relay)
        try:
            print(f"# relay={args.relay} media_processes={args.nodes} recording={not args.no_record} "
                  f"cores={os.cpu_count()} load_avg={' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
            for n in args.sessions:
                result = asyncio.run(run_level([(port, proc.pid) for proc, port in nodes], n, args.seconds, clip))
                # Held: every receiver gets >= 90% of the frames and 99% of frames come within 3 frame times.
                result["frame_rate_held"] = result["fps_min"] >= FPS * 0.9 and (result["frame_gap_ms_p99"] or 1e9) <= 3000 / FPS
                print(json.dumps(result), flush=True)
        finally:
            for proc, _port in nodes:
                proc.terminate()
                proc.wait(timeout=10)


if __name__ == "__main__":
    main()
