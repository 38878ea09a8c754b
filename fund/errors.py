"""The core library's exceptions. Each carries a stable `code`; the HTTP edge
(fund/routes/errors.py) maps codes to a status and a Chinese message."""
from __future__ import annotations


class CoreError(Exception):
    code = "core_error"
    audit_seq: int | None = None   # set when the refusal was committed to the audit chain with its change


class PolicyError(CoreError, ValueError):
    """A rules file is missing, malformed or inconsistent (raised at load, not per request)."""

    code = "policy_error"


class InvalidInput(CoreError, ValueError):
    code = "invalid_input"


class TokenExpired(CoreError):
    """A pii_ token is unknown to the vault or has expired; `kind` is its prefix (id, ph, nm, cd)."""

    code = "token_expired"

    def __init__(self, token: str):
        super().__init__(token)
        self.kind = token.split("_")[1] if token.count("_") >= 2 else ""


class VaultUnavailable(CoreError):
    code = "vault_unavailable"


class PersonNotFound(CoreError):
    """Unknown ID number, or name and ID do not match: deliberately indistinguishable."""

    code = "person_not_found"


class IdentityLocked(CoreError):
    code = "locked"

    def __init__(self, retry_after_s: int):
        super().__init__(f"locked for {retry_after_s} s")
        self.retry_after_s = retry_after_s


class WrongCode(CoreError):
    code = "wrong_code"

    def __init__(self, attempts_left: int):
        super().__init__(f"wrong code, {attempts_left} attempts left")
        self.attempts_left = attempts_left


class ChallengeExpired(CoreError):
    code = "challenge_expired"


class NotBound(CoreError):
    code = "not_bound"


class VerificationExpired(CoreError):
    """Unknown person_ref, or the session has been idle too long."""

    code = "verification_expired"


class IdempotencyConflict(CoreError):
    """An idempotency key already names an audit record with other contents."""

    code = "idempotency_conflict"

    def __init__(self, seq: int, fields: list[str]):
        super().__init__(f"idempotency key already used by seq={seq}, which differs in {', '.join(fields)}")
        self.seq = seq
        self.fields = fields
