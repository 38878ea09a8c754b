"""Staff console login: password (scrypt) plus TOTP, sessions in redis, roles staff and supervisor.

Five wrong logins lock an account for 15 minutes; a TOTP code works once. Accounts come from
settings (STAFF_ACCOUNTS). `python -m gateway.staff_auth hash` prints a password hash and
`python -m gateway.staff_auth secret` a new TOTP secret for a new account.
"""
from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass
from typing import Annotated, Optional

import pyotp
from fastapi import Depends, HTTPException, Request
from redis.asyncio import Redis

from gateway import keys
from gateway.settings import StaffAccount

logger = logging.getLogger(__name__)
MAX_FAILURES = 5
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    return "scrypt$" + salt.hex() + "$" + hashlib.scrypt(password.encode(), salt=salt, **SCRYPT).hex()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **SCRYPT).hex()
    return hmac.compare_digest(candidate, digest)


class LoginRefused(Exception):
    """Wrong credentials or a locked account; `message` is safe to show (it never says which part was wrong)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class StaffSession:
    username: str
    role: str
    display_name: str


class StaffAuth:
    def __init__(self, redis: Redis, accounts: list[StaffAccount], session_ttl_s: int):
        self._r = redis
        self._accounts = {a.username: a for a in accounts}
        self._ttl = session_ttl_s

    async def login(self, username: str, password: str, code: str) -> tuple[str, StaffSession]:
        fail_key = keys.staff_login_failures(username)
        if int(await self._r.get(fail_key) or 0) >= MAX_FAILURES:
            logger.warning("staff.login.locked user=%s", username)
            raise LoginRefused("登录失败次数过多，账号已锁定 15 分钟。")
        account = self._accounts.get(username)
        ok = (account is not None
              and verify_password(password, account.password_hash.get_secret_value())
              and pyotp.TOTP(account.totp_secret.get_secret_value()).verify(code, valid_window=1)
              and await self._r.set(keys.staff_totp_used(username, code), "1", nx=True, ex=keys.TOTP_USED_TTL_S))
        if not ok:
            async with self._r.pipeline(transaction=True) as p:
                p.incr(fail_key)
                p.expire(fail_key, keys.STAFF_LOGIN_FAIL_TTL_S)
                await p.execute()
            logger.warning("staff.login.failed user=%s", username)
            raise LoginRefused("用户名、密码或动态验证码不正确。")
        await self._r.delete(fail_key)
        session = StaffSession(account.username, account.role, account.display_name or account.username)
        token = secrets.token_urlsafe(32)
        await self._r.set(keys.staff_session(token), json.dumps(asdict(session)), ex=self._ttl)
        logger.info("staff.login.ok user=%s role=%s", username, account.role)
        return token, session

    async def session(self, token: str) -> Optional[StaffSession]:
        raw = await self._r.get(keys.staff_session(token)) if token else None
        return StaffSession(**json.loads(raw)) if raw else None

    async def logout(self, token: str) -> None:
        await self._r.delete(keys.staff_session(token))


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else ""


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
