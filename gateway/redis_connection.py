"""The one way gateway processes connect to redis.

After redis restarts (a crash, AOF replay), every pooled connection is dead and the first command
on one fails with "Connection closed by server" — a citizen's turn answered 503 although redis
is back. One immediate retry on a fresh connection hides that; a redis that is really away still
fails fast (connect timeout 2 s) and gets the usual 503 with Retry-After.

The pool blocks for up to 2 s when all its connections are busy, rather than failing at once
(redis-py's default pool raises MaxConnectionsError when full: a burst of more than 100 commands
in flight, e.g. thousands of idle sockets pinging, answered citizens "服务暂时繁忙").
"""
from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


MAX_CONNECTIONS = 200
POOL_WAIT_S = 2.0


def connect(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S,
                                           decode_responses=True, socket_timeout=5, socket_connect_timeout=2,
                                           retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError])
    return Redis(connection_pool=pool)
