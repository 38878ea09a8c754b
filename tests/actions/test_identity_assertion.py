"""WeChat sign-in reaches the verification form only as an assertion the gateway signed for
this conversation; anything else is ignored and the form asks for the ID number as usual."""
import logging

import pytest

from actions.verification import ValidateVerificationForm
from bot import identity_assertion

from tests.actions.conftest import make_tracker, run
from tests.actions.identity import assertion_key  # noqa: F401 - fixture

IDENTITY = {"person_ref": "p-42", "name_masked": "张*", "age": 35, "elderly": False, "disabled": False}
SENDER = "web-abc"


def turn(domain, metadata, sender_id=SENDER):
    tracker = make_tracker(intent="check_balance", metadata=metadata, sender_id=sender_id)
    return run(ValidateVerificationForm(), tracker, domain)


def test_a_valid_assertion_verifies_through_the_openid(core, domain, assertion_key):
    core.on("POST", "/identity/openid", IDENTITY)
    signed = identity_assertion.sign(assertion_key, SENDER, "wechat_openid", "o-abc")
    reply = turn(domain, {"identity_assertion": signed})
    assert core.calls == [("POST", "/identity/openid", {"openid": "o-abc"})]
    assert reply.slots()["verified"] is True and reply.slots()["person_ref"] == "p-42"


def forged(key):
    return identity_assertion.sign(b"not-the-gateway-key", SENDER, "wechat_openid", "o-abc")


def expired(key):
    return identity_assertion.sign(key, SENDER, "wechat_openid", "o-abc", ttl_s=60, now=1_000_000)


def for_another_sender(key):
    return identity_assertion.sign(key, "web-other", "wechat_openid", "o-abc")


def tampered(key):
    version, body, mac = identity_assertion.sign(key, SENDER, "wechat_openid", "o-abc").split(".")
    return f"{version}.{body[:-2]}AA.{mac}"


def other_kind(key):
    return identity_assertion.sign(key, SENDER, "phone_caller", "o-abc")


@pytest.mark.parametrize("make, reason", [(forged, "bad_mac"), (expired, "expired"),
                                          (for_another_sender, "wrong_sender"), (tampered, "bad_mac"),
                                          (other_kind, "wrong_kind"), (lambda key: "garbage", "malformed")])
def test_forged_expired_or_foreign_assertions_are_ignored_and_logged(core, domain, assertion_key, caplog,
                                                                      make, reason):
    with caplog.at_level(logging.INFO, logger="actions.verification"):
        reply = turn(domain, {"identity_assertion": make(assertion_key)})
    assert core.calls == []
    assert reply.slots().get("verified") is not True
    assert f"verification.assertion.rejected reason={reason}" in caplog.text
    assert "o-abc" not in caplog.text


def test_a_raw_openid_in_the_metadata_does_nothing(core, domain, assertion_key):
    reply = turn(domain, {"wechat_openid": "o-abc"})
    assert core.calls == [] and reply.slots().get("verified") is not True


def test_an_assertion_signed_with_the_dev_key_is_refused_when_the_key_is_real(core, domain, assertion_key):
    signed = identity_assertion.sign(b"dev-identity-assertion-key", SENDER, "wechat_openid", "o-abc")
    reply = turn(domain, {"identity_assertion": signed})
    assert core.calls == [] and reply.slots().get("verified") is not True


# -- bot/identity_assertion.py itself -----------------------------------------------------

KEY = b"k" * 32


def test_sign_and_verify_round_trip_within_the_lifetime():
    signed = identity_assertion.sign(KEY, SENDER, "wechat_openid", "o-微信", ttl_s=300, now=1000)
    got = identity_assertion.verify(KEY, signed, SENDER, now=1299)
    assert got == identity_assertion.Assertion(SENDER, "wechat_openid", "o-微信", 1000, 1300)
    assert identity_assertion.verify(KEY, signed, SENDER, now=1300) is None
    assert signed.startswith("v1.") and signed.count(".") == 2


@pytest.mark.parametrize("token, reason", [
    ("v2." + identity_assertion.sign(KEY, SENDER, "k", "v").split(".", 1)[1], "unknown_version"),
    ("v1." + "A" * 3000 + ".AAAA", "too_long"),
    ("v1.only-two", "malformed"),
    ("v1.AAAA.!!!", "malformed"),
    ("v1.!!!.AAAA", "bad_mac"),
    (None, "malformed"),
    (12345, "malformed"),
    ("", "malformed"),
])
def test_bad_tokens_are_rejected_with_a_reason_and_verify_never_raises(token, reason):
    with pytest.raises(identity_assertion.InvalidAssertion) as err:
        identity_assertion.decode(KEY, token, SENDER)
    assert err.value.reason == reason
    assert identity_assertion.verify(KEY, token, SENDER) is None


def test_a_validly_signed_payload_of_the_wrong_shape_is_malformed():
    import base64
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(b'{"sub": "web-abc", "kind": "k", "value": 1, "iat": 0, "exp": 9}').decode().rstrip("=")
    mac = hmac.new(KEY, f"v1.{body}".encode(), hashlib.sha256).digest()
    token = f"v1.{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
    with pytest.raises(identity_assertion.InvalidAssertion, match="malformed"):
        identity_assertion.decode(KEY, token, SENDER, now=1)


def test_an_empty_key_verifies_nothing_and_signs_nothing():
    signed = identity_assertion.sign(KEY, SENDER, "k", "v")
    assert identity_assertion.verify(b"", signed, SENDER) is None
    with pytest.raises(ValueError):
        identity_assertion.sign(b"", SENDER, "k", "v")


def test_a_lifetime_beyond_the_maximum_is_refused_both_ways():
    with pytest.raises(ValueError):
        identity_assertion.sign(KEY, SENDER, "k", "v", ttl_s=identity_assertion.MAX_TTL_S + 1)


def otp_turn(domain, metadata):
    tracker = make_tracker({"id_number": "pii_id_x", "person_name": "pii_nm_y", "challenge_id": "ch-1",
                            "requested_slot": "otp_code"},
                           active_loop="verification_form", slot_events={"otp_code": "482913"}, metadata=metadata)
    return run(ValidateVerificationForm(), tracker, domain)


def test_a_code_verified_in_a_wechat_conversation_binds_the_openid(core, domain, assertion_key):
    core.on("POST", "/identity/challenges/ch-1/verify", IDENTITY)
    core.on("POST", "/identity/openid/bind", {"bound": True, "changed": True, "replaced": False})
    signed = identity_assertion.sign(assertion_key, SENDER, "wechat_openid", "o-abc")
    reply = otp_turn(domain, {"identity_assertion": signed})
    assert reply.slots()["verified"] is True
    assert core.calls[-1] == ("POST", "/identity/openid/bind",
                              {"openid": "o-abc", "person_ref": "p-42", "channel_ref": SENDER})


def test_without_an_assertion_or_when_binding_fails_verification_still_succeeds(core, domain, assertion_key):
    core.on("POST", "/identity/challenges/ch-1/verify", IDENTITY)
    assert otp_turn(domain, {}).slots()["verified"] is True
    assert [c[1] for c in core.calls] == ["/identity/challenges/ch-1/verify"]
    core.refuse("POST", "/identity/openid/bind", 400, "bind_refused")
    signed = identity_assertion.sign(assertion_key, SENDER, "wechat_openid", "o-abc")
    assert otp_turn(domain, {"identity_assertion": signed}).slots()["verified"] is True


def test_the_openid_is_tried_while_rasa_activates_the_form(core, domain, assertion_key):
    """On the real stack the validator already sees the form as the active loop, with no slot requested yet."""
    core.on("POST", "/identity/openid", IDENTITY)
    signed = identity_assertion.sign(assertion_key, SENDER, "wechat_openid", "o-abc")
    tracker = make_tracker(intent="check_balance", metadata={"identity_assertion": signed}, sender_id=SENDER,
                           active_loop="verification_form")
    assert run(ValidateVerificationForm(), tracker, domain).slots()["verified"] is True
