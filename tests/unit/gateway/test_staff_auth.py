"""Staff login hardening: argon2 with legacy scrypt, equal work for unknown names, atomic
per-IP and per-account limits a stranger cannot turn against the real user, idle sessions."""
import asyncio
import threading
import time

import pyotp
import pytest

from gateway import keys, staff_auth
from gateway.settings import DEV_STAFF_ACCOUNTS, StaffAccount
from gateway.staff_auth import (ACCOUNT_MAX_FAILURES, IP_MAX_FAILURES, WINDOW_S, LoginRefused, StaffAuth,
                                hash_password, needs_rehash, verify_password)

SECRET = pyotp.random_base32()
PASSWORD = "s3cret-pass"
HASH = hash_password(PASSWORD)
TOTP = pyotp.TOTP(SECRET)


def codes() -> list[str]:
    """The three codes valid right now (valid_window=1), each usable once."""
    now = time.time()
    return [TOTP.at(now - 30), TOTP.at(now), TOTP.at(now + 30)]


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def auth(redis, clock):
    account = StaffAccount(username="zhang", role="staff", password_hash=HASH, totp_secret=SECRET)
    return StaffAuth(redis, [account, *DEV_STAFF_ACCOUNTS], 3600, idle_ttl_s=1800, clock=clock)


@pytest.fixture
def verify_calls(monkeypatch):
    """Spies on the password check: which hash it got and on which thread it ran."""
    calls = []
    real = staff_auth.verify_password

    def spy(password, stored):
        calls.append((stored, threading.current_thread() is threading.main_thread()))
        return real(password, stored)

    monkeypatch.setattr(staff_auth, "verify_password", spy)
    return calls


async def fail(auth, ip, username="zhang"):
    with pytest.raises(LoginRefused) as refused:
        await auth.login(username, "guess", "123456", client_ip=ip)
    return refused.value


def test_new_hashes_are_argon2id_and_verify_only_the_right_password():
    assert HASH.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(PASSWORD, HASH)
    assert not verify_password(PASSWORD + "!", HASH)
    assert not verify_password(PASSWORD, "$argon2id$garbage")
    assert not needs_rehash(HASH)


def test_legacy_scrypt_hashes_still_verify_and_are_flagged_for_rehash():
    legacy = DEV_STAFF_ACCOUNTS[0].password_hash.get_secret_value()
    assert verify_password("dev-staff-pass", legacy)
    assert not verify_password("dev-super-pass", legacy)
    assert needs_rehash(legacy)


def test_the_hash_command_prints_an_argon2_hash(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["gateway.staff_auth", "hash"])
    monkeypatch.setattr(staff_auth.getpass, "getpass", lambda prompt: "typed-pass")
    staff_auth.main()
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("$argon2id$") and verify_password("typed-pass", printed)


async def test_a_right_login_checks_the_hash_off_the_event_loop(auth, verify_calls):
    token, session = await auth.login("zhang", PASSWORD, codes()[1], client_ip="10.0.0.1")
    assert session.username == "zhang" and (await auth.session(token)).role == "staff"
    assert verify_calls == [(HASH, False)]


async def test_an_unknown_username_costs_a_hash_check_against_a_dummy(auth, verify_calls):
    refused = await fail(auth, "10.0.0.1", username="nobody")
    assert refused.message == staff_auth.WRONG and refused.retry_after_s == 0
    [(stored, on_loop)] = verify_calls
    assert stored.startswith("$argon2id$") and not on_loop


async def test_twenty_parallel_guesses_from_one_ip_get_only_five_checks(auth, verify_calls):
    results = await asyncio.gather(*(auth.login("zhang", "guess", "123456", client_ip="10.0.0.9")
                                     for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, LoginRefused) for r in results)
    assert len(verify_calls) == IP_MAX_FAILURES
    assert sum(r.retry_after_s > 0 for r in results) == 20 - IP_MAX_FAILURES


async def test_twenty_parallel_guesses_from_many_ips_never_pass_the_account_limit(auth, verify_calls):
    results = await asyncio.gather(*(auth.login("zhang", "guess", "123456", client_ip=f"10.1.0.{i}")
                                     for i in range(20)), return_exceptions=True)
    assert all(isinstance(r, LoginRefused) for r in results)
    assert len(verify_calls) == ACCOUNT_MAX_FAILURES


async def test_a_stranger_backing_off_at_one_ip_does_not_lock_the_user_at_another(auth):
    for _ in range(IP_MAX_FAILURES):
        assert (await fail(auth, "203.0.113.7")).retry_after_s == 0
    refused = await auth_refusal(auth, "zhang", PASSWORD, codes()[0], "203.0.113.7")
    assert refused.retry_after_s == WINDOW_S and "锁定" in refused.message
    _, session = await auth.login("zhang", PASSWORD, codes()[1], client_ip="198.51.100.2")
    assert session.username == "zhang"


async def auth_refusal(auth, username, password, code, ip) -> LoginRefused:
    with pytest.raises(LoginRefused) as refused:
        await auth.login(username, password, code, client_ip=ip)
    return refused.value


async def test_hammering_while_refused_restarts_the_ip_window(auth, redis):
    for _ in range(IP_MAX_FAILURES):
        await fail(auth, "203.0.113.7")
    await redis.expire(keys.staff_login_ip_failures("203.0.113.7"), 10)
    assert (await fail(auth, "203.0.113.7")).retry_after_s == WINDOW_S
    assert await redis.ttl(keys.staff_login_ip_failures("203.0.113.7")) > 10


async def test_the_account_lock_spares_only_ips_the_account_used_before(auth):
    await auth.login("zhang", PASSWORD, codes()[0], client_ip="198.51.100.2")  # the user's desk
    for i in range(ACCOUNT_MAX_FAILURES):
        await fail(auth, f"203.0.113.{i // IP_MAX_FAILURES}")
    refused = await auth_refusal(auth, "zhang", PASSWORD, codes()[1], "192.0.2.50")
    assert 0 < refused.retry_after_s <= WINDOW_S
    _, session = await auth.login("zhang", PASSWORD, codes()[2], client_ip="198.51.100.2")
    assert session.username == "zhang"


async def test_a_success_gives_its_attempt_back(auth, redis):
    for _ in range(IP_MAX_FAILURES - 1):
        await fail(auth, "10.0.0.1")
    await auth.login("zhang", PASSWORD, codes()[1], client_ip="10.0.0.1")
    assert int(await redis.get(keys.staff_login_ip_failures("10.0.0.1"))) == IP_MAX_FAILURES - 1
    assert int(await redis.get(keys.staff_login_failures("zhang"))) == IP_MAX_FAILURES - 1


async def test_a_totp_code_works_once(auth):
    code = codes()[1]
    await auth.login("zhang", PASSWORD, code, client_ip="10.0.0.1")
    refused = await auth_refusal(auth, "zhang", PASSWORD, code, "10.0.0.1")
    assert refused.message == staff_auth.WRONG


async def test_a_session_ends_after_thirty_idle_minutes(auth, clock):
    token, _ = await auth.login("zhang", PASSWORD, codes()[1], client_ip="10.0.0.1")
    clock.t += 29 * 60
    assert await auth.session(token) is not None
    clock.t += 29 * 60  # 58 min after login, but only 29 since the last request
    assert await auth.session(token) is not None
    clock.t += 31 * 60
    assert await auth.session(token) is None


async def test_a_busy_session_still_ends_at_the_absolute_ttl(auth, clock):
    token, _ = await auth.login("zhang", PASSWORD, codes()[1], client_ip="10.0.0.1")
    for _ in range(3):
        clock.t += 19 * 60
        assert await auth.session(token) is not None
    clock.t += 4 * 60  # 61 min after login, 4 since the last request
    assert await auth.session(token) is None


async def test_redis_holds_the_session_with_an_idle_ttl_and_never_the_token(auth, redis):
    token, _ = await auth.login("zhang", PASSWORD, codes()[1], client_ip="10.0.0.1")
    [key] = [k async for k in redis.scan_iter(keys.staff_session("*"))]
    assert token not in key
    assert 0 < await redis.ttl(key) <= 1800
    await auth.logout(token)
    assert await auth.session(token) is None
