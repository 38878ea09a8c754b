"""Staff console login: password (argon2id) plus TOTP, sessions in redis, roles staff and supervisor.

Lockout rule (counts live in redis; each attempt is counted, INCR and its expiry in one MULTI,
*before* the password is checked, so parallel guesses cannot slip past a limit; a successful
login gives its own attempt back, so the counters hold failures):

- Per client IP: after IP_MAX_FAILURES failed attempts within the window (15 min) the IP is
  refused without any check, with `retry_after_s` (the route answers 429 + Retry-After). Every
  attempt while refused starts the window again, so a client that keeps hammering waits
  longer and longer; one that waits as told gets five more tries.
- Per account: after ACCOUNT_MAX_FAILURES failed attempts within the window, from any IPs, the
  account is locked for the rest of the window -- but not for an IP from which this account
  logged in successfully in the last 30 days ("known IP"): there a correct password + TOTP
  still logs in, within that IP's own limit. So a stranger can lock a name for new IPs, never
  for the real user at their usual desk, and gets at most 5 guesses per IP and 10 per account
  per window from IPs the account never used.
- Unknown usernames cost the same work (a dummy argon2 hash and a dummy TOTP check), so
  timing does not tell which names exist, and they are counted like real ones.

Sessions end after STAFF_SESSION_IDLE_S without an authenticated request (each one extends
it) and at the latest session_ttl_s after login. Redis holds a session under the sha256 of its
token. Accounts come from settings (STAFF_ACCOUNTS). `python -m gateway.staff_auth hash` prints
a password hash and `python -m gateway.staff_auth secret` a new TOTP secret for a new account.
Older `scrypt$` hashes still verify; a login with one logs `staff.login.rehash_advised`.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import getpass
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Callable, Optional

import argon2
import pyotp
from fastapi import Depends, HTTPException, Request
from redis.asyncio import Redis

from gateway import keys, sessions
from gateway.settings import StaffAccount

logger = logging.getLogger(__name__)
IP_MAX_FAILURES = 5
ACCOUNT_MAX_FAILURES = 10
WINDOW_S = keys.STAFF_LOGIN_FAIL_TTL_S
STAFF_SESSION_IDLE_S = 30 * 60
HASH_CONCURRENCY = 4  # each argon2 check takes 64 MiB: bound the memory a login flood can claim
UNKNOWN_IP = "unknown"
# RFC 9106's second recommended profile (argon2id, t=3, 64 MiB, p=4): argon2-cffi's default.
_HASHER = argon2.PasswordHasher.from_parameters(argon2.profiles.RFC_9106_LOW_MEMORY)
LEGACY_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # only to verify hashes made before argon2
_DUMMY_TOTP = pyotp.random_base32()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **LEGACY_SCRYPT).hex()
    return hmac.compare_digest(candidate, digest)


def needs_rehash(stored: str) -> bool:
    """True for legacy scrypt hashes and argon2 hashes weaker than today's parameters."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except argon2.exceptions.InvalidHashError:
        return True


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """What an unknown username is checked against: same scheme and cost as a real account."""
    return hash_password(secrets.token_urlsafe(16))


def _check_credentials(password: str, stored: str, code: str, totp_secret: str) -> bool:
    """Runs in a worker thread: the hash takes ~0.1 s of CPU. Both checks always run."""
    password_ok = verify_password(password, stored)
    code_ok = pyotp.TOTP(totp_secret).verify(code, valid_window=1)
    return password_ok and code_ok


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginRefused(Exception):
    """Wrong credentials or a lock; `message` is safe to show (it never says which part was wrong).

    `retry_after_s` > 0 means "locked, try again later": the route answers 429 with Retry-After.
    """

    def __init__(self, message: str, retry_after_s: int = 0):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


WRONG = "用户名、密码或动态验证码不正确。"


def _locked(retry_after_s: int) -> LoginRefused:
    minutes = max(1, math.ceil(retry_after_s / 60))
    return LoginRefused(f"登录失败次数过多，已暂时锁定，请 {minutes} 分钟后再试。", retry_after_s)


@dataclass(frozen=True)
class StaffSession:
    username: str
    role: str
    display_name: str


class StaffAuth:
    def __init__(self, redis: Redis, accounts: list[StaffAccount], session_ttl_s: int, *,
                 idle_ttl_s: int = STAFF_SESSION_IDLE_S, clock: Callable[[], float] = time.time):
        self._r = redis
        self._accounts = {a.username: a for a in accounts}
        self._ttl = session_ttl_s
        self._idle = idle_ttl_s
        self._clock = clock
        self._hashing = asyncio.Semaphore(HASH_CONCURRENCY)
        _dummy_hash()  # made once per process now, so the first unknown name costs no extra hash

    async def login(self, username: str, password: str, code: str,
                    client_ip: Optional[str] = None) -> tuple[str, StaffSession]:
        """`client_ip` is request.client.host; without it every caller shares one IP bucket."""
        ip = client_ip or UNKNOWN_IP
        await self._count_attempt(username, ip)
        account = self._accounts.get(username)
        stored = account.password_hash.get_secret_value() if account else _dummy_hash()
        secret = account.totp_secret.get_secret_value() if account else _DUMMY_TOTP
        async with self._hashing:
            ok = await asyncio.to_thread(_check_credentials, password, stored, code, secret)
        ok = (ok and account is not None
              and await self._r.set(keys.staff_totp_used(username, code), "1", nx=True, ex=keys.TOTP_USED_TTL_S))
        if not ok:
            logger.warning("staff.login.failed user=%s ip=%s", username, ip)
            raise LoginRefused(WRONG)
        await self._refund_attempt(username, ip)
        await self._r.set(keys.staff_known_ip(username, ip), "1", ex=keys.STAFF_KNOWN_IP_TTL_S)
        if needs_rehash(stored):
            logger.warning("staff.login.rehash_advised user=%s", username)
        return await self._open_session(account), self._session_of(account)

    async def _count_attempt(self, username: str, ip: str) -> None:
        """Counts this attempt first, then decides on the counts (see the module docstring)."""
        ip_key = keys.staff_login_ip_failures(ip)
        async with self._r.pipeline(transaction=True) as p:
            p.set(ip_key, 0, ex=WINDOW_S, nx=True)
            p.incr(ip_key)
            _, ip_count = await p.execute()
        if ip_count > IP_MAX_FAILURES:
            await self._r.expire(ip_key, WINDOW_S)
            logger.warning("staff.login.ip_backoff ip=%s attempts=%s", ip, ip_count)
            raise _locked(WINDOW_S)
        account_key = keys.staff_login_failures(username)
        async with self._r.pipeline(transaction=True) as p:
            p.set(account_key, 0, ex=WINDOW_S, nx=True)
            p.incr(account_key)
            p.ttl(account_key)
            p.exists(keys.staff_known_ip(username, ip))
            _, account_count, ttl, known_ip = await p.execute()
        if account_count > ACCOUNT_MAX_FAILURES and not known_ip:
            logger.warning("staff.login.locked user=%s ip=%s", username, ip)
            raise _locked(ttl if ttl > 0 else WINDOW_S)

    async def _refund_attempt(self, username: str, ip: str) -> None:
        """A success is not a failure. SET NX first: a counter that expired meanwhile must not be
        recreated without a TTL."""
        async with self._r.pipeline(transaction=True) as p:
            for key in (keys.staff_login_ip_failures(ip), keys.staff_login_failures(username)):
                p.set(key, 0, ex=WINDOW_S, nx=True)
                p.decr(key)
            await p.execute()

    @staticmethod
    def _session_of(account: StaffAccount) -> StaffSession:
        return StaffSession(account.username, account.role, account.display_name or account.username)

    async def _open_session(self, account: StaffAccount) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        record = {"staff": asdict(self._session_of(account)), "created": now, "seen": now}
        await self._r.set(keys.staff_session(_digest(token)), json.dumps(record),
                          ex=max(1, min(self._idle, self._ttl)))
        logger.info("staff.login.ok user=%s role=%s", account.username, account.role)
        return token

    async def session(self, token: str) -> Optional[StaffSession]:
        """The session of a token, extended by this request; None when unknown, idle or too old."""
        if not token:
            return None
        key = keys.staff_session(_digest(token))
        raw = await self._r.get(key)
        if not raw:
            return None
        record = json.loads(raw)
        now = self._clock()
        left = min(self._idle - (now - record["seen"]), self._ttl - (now - record["created"]))
        if left <= 0:
            await self._r.delete(key)
            return None
        record["seen"] = now
        # XX: a logout between the GET and here must not bring the session back.
        await self._r.set(key, json.dumps(record), xx=True,
                          ex=max(1, math.ceil(min(self._idle, self._ttl - (now - record["created"])))))
        return StaffSession(**record["staff"])

    async def logout(self, token: str) -> None:
        await self._r.delete(keys.staff_session(_digest(token)))


def bearer_token(request: Request) -> str:
    """The staff session token from `Authorization: Bearer`, parsed as for chat sessions; "" if none."""
    return sessions.bearer(request) or ""


async def _current_staff(request: Request) -> StaffSession:
    session = await request.app.state.staff_auth.session(bearer_token(request))
    if session is None:
        raise HTTPException(status_code=401, detail="请先登录工作人员控制台。")
    return session


async def _supervisor(session: Annotated[StaffSession, Depends(_current_staff)]) -> StaffSession:
    if session.role != "supervisor":
        raise HTTPException(status_code=403, detail="只有主管可以查看统计数据。")
    return session


CurrentStaff = Annotated[StaffSession, Depends(_current_staff)]
Supervisor = Annotated[StaffSession, Depends(_supervisor)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.staff_auth", description="Staff account tools")
    parser.add_argument("command", choices=["hash", "secret"])
    args = parser.parse_args()
    if args.command == "hash":
        print(hash_password(getpass.getpass("password: ")))
    else:
        print(pyotp.random_base32())


if __name__ == "__main__":
    main()
