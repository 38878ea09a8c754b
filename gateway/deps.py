"""Named dependencies so routes read like prose."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from gateway.conversation import Conversation
from gateway.limits import RateLimiter
from gateway.rasa_client import RasaClient
from gateway.sessions import SessionStore
from gateway.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _redis(request: Request) -> Redis:
    return request.app.state.redis


def _rasa(request: Request) -> RasaClient:
    return request.app.state.rasa


def _conversation(request: Request) -> Conversation:
    return request.app.state.conversation


def _limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter


def _sessions(request: Request) -> SessionStore:
    return request.app.state.sessions


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[Redis, Depends(_redis)]
RasaDep = Annotated[RasaClient, Depends(_rasa)]
ConversationDep = Annotated[Conversation, Depends(_conversation)]
SessionsDep = Annotated[SessionStore, Depends(_sessions)]
LimiterDep = Annotated[RateLimiter, Depends(_limiter)]
