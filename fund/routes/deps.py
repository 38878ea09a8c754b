"""What the routes need, owned by the app (app.state.core), as named Annotated dependencies."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from fund.applications import ApplicationService
from fund.audit import AuditLog
from fund.clock import Clock, china_date
from fund.rulebook import Rulebook
from fund.vault import Vault
from fund.verification import IdentityService


@dataclass
class Core:
    sessions: sessionmaker[Session]
    identity: IdentityService
    vault: Vault
    audit: AuditLog
    rulebook: Rulebook
    clock: Clock
    applications: ApplicationService

    def today(self) -> dt.date:
        return china_date(self.clock())


def core(request: Request) -> Core:
    return request.app.state.core


def db_session(request: Request) -> Iterator[Session]:
    with request.app.state.core.sessions() as session:
        yield session


CoreDep = Annotated[Core, Depends(core)]
DbSession = Annotated[Session, Depends(db_session)]


def note_audit(request: Request, *, actor: str | None = None, subject: str | None = None,
               seq: int | None = None) -> None:
    """Tells the audit middleware who acted on whom (already masked), or, with `seq`, that the
    call's own record was committed with its change, so the middleware writes none."""
    if actor is not None:
        request.state.audit_actor = actor
    if subject is not None:
        request.state.audit_subject = subject
    if seq is not None:
        request.state.audit_seq = seq
