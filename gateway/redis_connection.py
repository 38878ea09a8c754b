"""The one way gateway processes connect to redis.

After redis restarts (a crash, AOF replay), every pooled connection is dead and the first command
on one fails with "Connection closed by server" — a citizen's turn answered 503 although redis
is back. One immediate retry on a fresh connection hides that; a redis that is really away still
fails fast (connect timeout 2 s) and gets the usual 503 with Retry-After.
"""
from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2,
                          retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError])
