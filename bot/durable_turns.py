"""A turn the citizen gets an answer to is a turn kept in the tracker store (issue 20, fault suite).

Rasa wraps its tracker store in FailSafeTrackerStore: when redis fails, a turn is answered from
an empty in-memory tracker (the conversation's context forgotten) and saved only in that process's
memory — the citizen sees an answer that is gone afterwards. Here a store error fails the turn
instead; the gateway channel then answers nothing (bot/gateway_channel.py) and the gateway
answers from the knowledge base, saying that transactions are briefly unavailable.

Rasa's redis clients (tracker and lock stores, redis-py 4, synchronous) also retry a command
once on a fresh connection: after a redis restart every pooled connection is dead, and without
the retry the first turn on each would fail although redis is back.

Imported once by bot/gateway_channel.py, which `rasa run` loads at start from credentials.yml.
"""
from __future__ import annotations

from typing import Optional

from rasa.core.agent import Agent
from rasa.core.lock_store import RedisLockStore
from rasa.core.tracker_store import InMemoryTrackerStore, RedisTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry


def tracker_store_without_fallback(store: Optional[TrackerStore], domain: Domain) -> TrackerStore:
    """Agent._create_tracker_store, less the FailSafeTrackerStore wrapper."""
    if store is None:
        return InMemoryTrackerStore(domain)
    store.domain = domain
    return store


def retry_once(client) -> None:
    """New connections of this client's pool retry a command once after a connection error."""
    client.connection_pool.connection_kwargs.update(retry=Retry(NoBackoff(), 1),
                                                    retry_on_error=[RedisConnectionError])


def _with_retry(init):
    def __init__(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        retry_once(self.red)
    return __init__


Agent._create_tracker_store = staticmethod(tracker_store_without_fallback)
RedisTrackerStore.__init__ = _with_retry(RedisTrackerStore.__init__)
RedisLockStore.__init__ = _with_retry(RedisLockStore.__init__)
