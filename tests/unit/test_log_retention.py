"""Process logs are archived once a day and archives past the retention are deleted (scripts/log_retention.py)."""
import datetime as dt
import gzip

import pytest

import log_retention

TODAY = dt.date(2026, 12, 6)


def test_a_log_is_archived_once_a_day_and_the_live_file_keeps_being_written(tmp_path):
    log = tmp_path / "gateway.log"
    with open(log, "ab") as writer:                 # a process holds its log open in append mode
        writer.write(b"chat.turn sender=web-1\n")
        writer.flush()
        done = log_retention.rotate(tmp_path, TODAY, 183)
        assert done.archived == ["gateway-20261206.log.gz"] and log.stat().st_size == 0
        writer.write(b"after rotation\n")
        writer.flush()
    assert log.read_bytes() == b"after rotation\n"  # no hole of zeros, nothing before it
    with gzip.open(tmp_path / "archive" / "gateway-20261206.log.gz") as packed:
        assert packed.read() == b"chat.turn sender=web-1\n"
    assert log_retention.rotate(tmp_path, TODAY, 183).archived == []   # once a day


def test_archives_older_than_the_retention_are_deleted_and_younger_ones_kept(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    for day in ("20260601", "20260605", "20260606", "20261205"):
        (archive / f"core-{day}.log.gz").write_bytes(b"")
    (archive / "notes.txt").write_text("kept")
    done = log_retention.rotate(tmp_path, TODAY, 183)             # oldest kept: 2026-06-06
    assert sorted(done.deleted) == ["core-20260601.log.gz", "core-20260605.log.gz"]
    assert sorted(p.name for p in archive.iterdir()) == ["core-20260606.log.gz", "core-20261205.log.gz", "notes.txt"]


def test_the_retention_comes_from_the_environment_with_six_months_by_default(monkeypatch):
    monkeypatch.delenv("LOG_RETENTION_DAYS", raising=False)
    assert log_retention.retention_days() == 183
    monkeypatch.setenv("LOG_RETENTION_DAYS", "400")
    assert log_retention.retention_days() == 400
    monkeypatch.setenv("LOG_RETENTION_DAYS", "0")
    with pytest.raises(ValueError, match="at least 1"):
        log_retention.retention_days()
