"""Recording retention: recordings older than VIDEO_RECORDING_RETENTION_DAYS are deleted, each deletion
audited (`video.recording.deleted`, subject the file name) before the file goes.

The gateway and every media node run `RecordingRetention.run` (hourly); when they share the recordings
directory, a claim in redis lets one of them delete and audit a given file. By hand:
`python -m gateway.handoff.retention --dry-run` lists what would go; without --dry-run it deletes.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path
from typing import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import keys
from gateway.audit_client import AuditClient, AuditError
from gateway.logs import configure_logging
from gateway.redis_connection import connect as connect_redis
from gateway.settings import settings_or_exit

logger = logging.getLogger(__name__)
INTERVAL_S = 3600
CLAIM_TTL_S = 24 * 3600


def expired(directory: Path, days: int, now: float) -> list[Path]:
    """Recording files (*.webm, plain files) last written more than `days` ago, oldest first."""
    if not directory.is_dir():
        return []
    cutoff = now - days * 86400
    found = [(p.stat().st_mtime, p) for p in directory.glob("*.webm") if p.is_file() and not p.is_symlink()]
    return [p for mtime, p in sorted(found) if mtime < cutoff]


class RecordingRetention:
    def __init__(self, redis: Redis, audit: AuditClient, directory: Path, days: int,
                 clock: Callable[[], float] = time.time):
        self._r = redis
        self._audit = audit
        self._dir = directory
        self._days = days
        self._clock = clock

    async def sweep(self, dry_run: bool = False) -> list[str]:
        """Deletes (or, dry run, only lists) the expired recordings; returns their names. A file is
        deleted only once its audit record is in (the core's chain, or parked in redis)."""
        files = await asyncio.to_thread(expired, self._dir, self._days, self._clock())
        if dry_run:
            for path in files:
                logger.info("video.retention.would_delete file=%s retention=%dd", path.name, self._days)
            return [p.name for p in files]
        deleted = []
        for path in files:
            if not await self._r.set(keys.video_recording_deletion(path.name), "1", nx=True, ex=CLAIM_TTL_S):
                continue  # another process sharing the directory has it
            try:
                await self._audit.record("system", "video.recording.deleted", path.name, f"retention={self._days}d")
            except AuditError as exc:  # no deletion without its audit record: the next run tries again
                await self._r.delete(keys.video_recording_deletion(path.name))
                logger.error("video.retention.audit_failed file=%s error=%s", path.name, type(exc).__name__)
                continue
            try:
                await asyncio.to_thread(path.unlink)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.error("video.retention.delete_failed file=%s error=%s", path.name, exc)
                continue
            deleted.append(path.name)
            logger.info("video.retention.deleted file=%s retention=%dd", path.name, self._days)
        return deleted

    async def run(self, interval_s: float = INTERVAL_S) -> None:
        """Sweeps now and every interval_s until cancelled; a failed round (redis away) is logged and retried."""
        while True:
            try:
                await self.sweep()
            except (OSError, RedisError) as exc:
                logger.warning("video.retention.failed error=%s", type(exc).__name__)
            except Exception:  # the job must outlive any one bad round
                logger.exception("video.retention.failed")
            await asyncio.sleep(interval_s)


async def _sweep_once(dry_run: bool) -> list[str]:
    settings = settings_or_exit()
    redis = connect_redis(settings.redis_url)
    audit = AuditClient(redis, settings.core_url, settings.core_api_token.get_secret_value(), settings.audit_timeout_s)
    try:
        retention = RecordingRetention(redis, audit, settings.video_recordings_dir, settings.video_recording_retention_days)
        return await retention.sweep(dry_run=dry_run)
    finally:
        await audit.aclose()
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.handoff.retention",
                                     description="Delete recordings older than VIDEO_RECORDING_RETENTION_DAYS.")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete and audit nothing")
    args = parser.parse_args()
    configure_logging()
    names = asyncio.run(_sweep_once(args.dry_run))
    logger.info("video.retention.done %s=%d", "would_delete" if args.dry_run else "deleted", len(names))


if __name__ == "__main__":
    main()
