"""Every opening of a room records to a file of its own: an audited recording is never overwritten."""
import datetime as dt

import pytest

from video.recording import RecordingError, SessionRecorder, recording_path
from video.rooms import RoomRegistry


@pytest.mark.parametrize("relay_encoded", [True, False])
async def test_two_openings_of_one_room_write_two_files(tmp_path, relay_encoded):
    registry = RoomRegistry([], tmp_path, relay_encoded=relay_encoded)
    registry.open("room1")
    first = await registry.close("room1")
    registry.open("room1")  # a re-opened room (or the same room moved to another node on this disk)
    second = await registry.close("room1")
    assert first.path != second.path and first.path.exists() and second.path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.path.name, second.path.name])
    assert all(p.name.startswith("room1-") and p.suffix == ".webm" for p in tmp_path.iterdir())


def test_names_differ_even_within_one_microsecond(tmp_path):
    now = dt.datetime(2025, 3, 12, 2, 0, tzinfo=dt.timezone.utc)
    names = {recording_path(tmp_path, "room1", now).name for _ in range(50)}
    assert len(names) == 50 and all(n.startswith("room1-20250312T020000000000Z-") for n in names)


def test_a_recorder_refuses_a_file_that_exists(tmp_path):
    earlier = tmp_path / "room1.webm"
    earlier.write_bytes(b"an audited recording")
    with pytest.raises(RecordingError):
        SessionRecorder(earlier).start([])
    assert earlier.read_bytes() == b"an audited recording"
