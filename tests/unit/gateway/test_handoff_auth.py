"""Staff login: password + TOTP, a code works once, lockout after five failures."""
import fakeredis
import pyotp
import pytest

from gateway.settings import DEV_STAFF_ACCOUNTS, StaffAccount
from gateway.staff_auth import LoginRefused, StaffAuth, hash_password, verify_password

SECRET = pyotp.random_base32()


@pytest.fixture
async def auth():
    r = fakeredis.FakeAsyncRedis(decode_responses=True)
    account = StaffAccount(username="zhang", role="staff", password_hash=hash_password("s3cret-pass"), totp_secret=SECRET)
    yield StaffAuth(r, [account, *DEV_STAFF_ACCOUNTS], 3600)
    await r.aclose()


def test_password_hashes_verify_only_the_right_password():
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horse!", stored)
    assert not verify_password("x", "md5$bad")


async def test_password_and_current_code_log_in_and_the_session_has_the_role(auth):
    token, session = await auth.login("zhang", "s3cret-pass", pyotp.TOTP(SECRET).now())
    assert (await auth.session(token)).role == "staff"
    await auth.logout(token)
    assert await auth.session(token) is None


async def test_the_dev_supervisor_account_works_outside_production(auth):
    totp = pyotp.TOTP(DEV_STAFF_ACCOUNTS[1].totp_secret.get_secret_value())
    _, session = await auth.login("dev-supervisor", "dev-super-pass", totp.now())
    assert session.role == "supervisor"


@pytest.mark.parametrize("password,current_code", [("wrong", True), ("s3cret-pass", False)])
async def test_a_wrong_password_or_code_is_refused(auth, password, current_code):
    totp = pyotp.TOTP(SECRET)
    code = totp.now() if current_code else totp.at(0)  # a code from 1970 is never in the window
    with pytest.raises(LoginRefused):
        await auth.login("zhang", password, code)


async def test_a_code_cannot_be_used_twice(auth):
    code = pyotp.TOTP(SECRET).now()
    await auth.login("zhang", "s3cret-pass", code)
    with pytest.raises(LoginRefused):
        await auth.login("zhang", "s3cret-pass", code)


async def test_five_failures_lock_the_account_even_for_the_right_credentials(auth):
    for _ in range(5):
        with pytest.raises(LoginRefused):
            await auth.login("zhang", "guess", "123456")
    with pytest.raises(LoginRefused, match="锁定"):
        await auth.login("zhang", "s3cret-pass", pyotp.TOTP(SECRET).now())


REAL_SECRETS = {name: f"real-{name}-0123456789abcdef" for name in (
    "rasa_token", "rasa_gateway_token", "core_api_token", "video_node_token", "identity_assertion_key",
    "wechat_token", "wechat_app_secret")}


def test_production_refuses_the_demo_accounts():
    from gateway.settings import Settings
    with pytest.raises(ValueError, match="STAFF_ACCOUNTS"):
        Settings(_env_file=None, anju_env="production", **REAL_SECRETS)


@pytest.mark.parametrize("name", sorted(REAL_SECRETS))
def test_production_refuses_each_development_secret_by_name(name):
    from gateway.settings import Settings
    with pytest.raises(ValueError, match=name.upper()):
        Settings(_env_file=None, anju_env="production", **{**REAL_SECRETS, name: f"dev-{name}"})


def test_unset_environment_means_production_and_unknown_names_are_refused(monkeypatch):
    from gateway.settings import Settings
    monkeypatch.delenv("ANJU_ENV", raising=False)
    with pytest.raises(ValueError, match="RASA_TOKEN"):
        Settings(_env_file=None)
    with pytest.raises(ValueError, match="anju_env"):
        Settings(_env_file=None, anju_env="staging")


@pytest.mark.parametrize("changes, name", [
    ({"wechat_aes_key": ""}, "WECHAT_AES_KEY"),
    ({"wechat_appid": "wx-dev-appid"}, "WECHAT_APPID"),
    ({"wechat_api_base": "http://127.0.0.1:9"}, "WECHAT_API_BASE"),
])
def test_production_refuses_wechat_placeholders_by_name(changes, name):
    from gateway.settings import Settings, StaffAccount
    real_staff = [StaffAccount(username="zhang", password_hash="scrypt$x", totp_secret="JBSWY3DPEHPK3PXP")]
    good = {**REAL_SECRETS, "staff_accounts": real_staff, "wechat_aes_key": "k" * 43, "wechat_appid": "wx1234567890abcdef"}
    assert Settings(_env_file=None, anju_env="production", **good).wechat_msg_format == "xml"
    with pytest.raises(ValueError, match=name):
        Settings(_env_file=None, anju_env="production", **{**good, **changes})


def test_a_wechat_aes_key_of_the_wrong_length_is_refused_everywhere():
    from gateway.settings import Settings
    with pytest.raises(ValueError, match="43-character"):
        Settings(_env_file=None, anju_env="test", wechat_aes_key="short")
