"""Video handoff capacity: setup time and how many relayed + recorded 640x480@15 sessions one media
process holds before frame rate drops, with the media process's CPU per session.

The media process (video.rooms.RoomRegistry behind a one-POST endpoint, like the gateway's) runs
as a child process so its CPU is measured alone; the synthetic "browsers" (aiortc peers sending
moving 640x480@15 video and a tone) run here. Run inside a private network namespace:
  unshare -n sh -c 'ip link set lo up; python bench/video_sessions.py --sessions 1 2 4'
Prints one line per load level; results are not asserted (this is a benchmark, not a test).
"""
from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack  # noqa: E402
from av import VideoFrame  # noqa: E402

FPS = 15
TICKS = os.sysconf("SC_CLK_TCK")


class MovingVideo(VideoStreamTrack):
    """640x480 at 15 fps with a moving bar, so the encoder has real work (a flat frame is free)."""

    def __init__(self):
        super().__init__()
        self._n = 0
        self._start = None

    async def recv(self):
        if self._start is None:
            self._start = time.monotonic()
        self._n += 1
        wait = self._start + self._n / FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = VideoFrame(640, 480, "yuv420p")
        y = frame.planes[0]
        row = bytes((((x + self._n * 8) // 40) % 2) * 200 + 20 for x in range(640))
        y.update(row * 480)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = self._n * (90000 // FPS), fractions.Fraction(1, 90000)
        return frame


class Peer:
    def __init__(self):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(AudioStreamTrack())
        self.pc.addTrack(MovingVideo())
        self.frames: list[float] = []
        self.first_frame_at: float | None = None
        self._tasks = []
        self.pc.on("track", lambda t: self._tasks.append(asyncio.ensure_future(self._read(t))))

    async def _read(self, track):
        while True:
            await track.recv()
            if track.kind == "video":
                now = time.monotonic()
                self.first_frame_at = self.first_frame_at or now
                self.frames.append(now)

    async def join(self, http: httpx.AsyncClient, room: str, role: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await http.post("/offer", json={"room": room, "role": role, "sdp": self.pc.localDescription.sdp})
        resp.raise_for_status()
        await self.pc.setRemoteDescription(RTCSessionDescription(**resp.json()))

    def fps(self, since: float) -> float:
        window = [t for t in self.frames if t >= since]
        return (len(window) - 1) / (window[-1] - window[0]) if len(window) > 2 else 0.0

    async def close(self):
        for t in self._tasks:
            t.cancel()
        await self.pc.close()


def serve(port: int, recordings: str) -> None:
    """The media process: a RoomRegistry behind POST /offer and POST /close, as in the gateway."""
    import uvicorn
    from fastapi import FastAPI

    from video.loopback import allow_loopback_candidates
    from video.rooms import RoomRegistry

    allow_loopback_candidates()
    app = FastAPI()
    registry = RoomRegistry([], Path(recordings) if recordings else None)

    @app.post("/offer")
    async def offer(body: dict):
        answer = await registry.open(body["room"]).join(body["role"], body["sdp"])
        return {"sdp": answer.sdp, "type": answer.type}

    @app.post("/close")
    async def close():
        recordings = [await registry.close(r) for r in list(registry._rooms)]
        return {"bytes": [r.size_bytes for r in recordings if r]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def run_level(port: int, pid: int, sessions: int, seconds: float) -> dict:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        pairs = [(Peer(), Peer()) for _ in range(sessions)]
        setup = []
        try:
            for i, (citizen, staff) in enumerate(pairs):
                await citizen.join(http, f"bench{i}", "citizen")
                accepted = time.monotonic()  # stands for "staff accepts": staff joins now
                await staff.join(http, f"bench{i}", "staff")
                deadline = time.monotonic() + 15
                while not (citizen.first_frame_at and staff.first_frame_at) and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                if citizen.first_frame_at and staff.first_frame_at:
                    setup.append(max(citizen.first_frame_at, staff.first_frame_at) - accepted)
            await asyncio.sleep(2)  # settle
            start, cpu0 = time.monotonic(), cpu_seconds(pid)
            await asyncio.sleep(seconds)
            cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - start)
            fps = [p.fps(start) for pair in pairs for p in pair]
        finally:
            for citizen, staff in pairs:
                await citizen.close()
                await staff.close()
            sizes = (await http.post("/close")).json()["bytes"]
    elapsed = seconds + 2
    return {"sessions": sessions, "setup_ms_median": round(sorted(setup)[len(setup) // 2] * 1000) if setup else None,
            "fps_min": round(min(fps), 1), "fps_mean": round(sum(fps) / len(fps), 1),
            "media_cpu_cores": round(cpu, 2), "cpu_per_session": round(cpu / sessions, 2),
            "recording_mb_per_min": round(sum(sizes) / len(sizes) / 1e6 * 60 / elapsed, 2) if sizes else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--recordings", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.recordings)
        return
    from video.loopback import allow_loopback_candidates
    allow_loopback_candidates()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--recordings",
                                   "" if args.no_record else tmp], cwd=ROOT)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    httpx.post(f"http://127.0.0.1:{port}/close", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            print(f"# media process pid={server.pid} recording={not args.no_record} cores={os.cpu_count()} "
                  f"load={os.getloadavg()[0]:.1f}")
            for n in args.sessions:
                result = asyncio.run(run_level(port, server.pid, n, args.seconds))
                result["frame_rate_held"] = result["fps_min"] >= FPS * 0.9
                print(json.dumps(result))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
