"""Names arrive as vault tokens (pii_nm_…) when the gateway recognised them: the form passes
the token to the core unchanged, and the core resolves it."""
from actions.verification import ValidateVerificationForm

from tests.actions.conftest import make_tracker, run

ID = "pii_id_3f9a0c1d2e4b5a6f"
NAME = "pii_nm_0a1b2c3d4e5f6071"
FORM = "verification_form"
CHALLENGE = {"challenge_id": "ch-1", "phone_masked": "138****5678", "expires_in_s": 300}


def form_turn(domain, slots=None, **candidates):
    tracker = make_tracker(slots, active_loop=FORM, slot_events=candidates)
    return run(ValidateVerificationForm(), tracker, domain)


def test_a_name_token_is_accepted_and_sent_to_the_core_unchanged(core, domain):
    core.on("POST", "/identity/challenges", CHALLENGE)
    reply = form_turn(domain, {"id_number": ID}, person_name=NAME)
    assert core.calls == [("POST", "/identity/challenges",
                           {"id_number": ID, "name": NAME, "channel_ref": "web-abc"})]
    assert reply.slots()["person_name"] == NAME


def test_a_name_token_after_a_cue_is_accepted(core, domain):
    reply = form_turn(domain, person_name=f"我叫{NAME}")
    assert reply.slots()["person_name"] == NAME and core.calls == []


def test_another_kind_of_token_is_no_name(core, domain):
    reply = form_turn(domain, {"id_number": ID}, person_name="pii_ph_0a1b2c3d4e5f6071")
    assert reply.slots()["person_name"] is None and core.calls == []


def test_a_clear_id_typed_with_spaces_or_full_width_digits_is_normalised(core, domain):
    core.on("POST", "/identity/id-numbers/check", {"valid": True})
    reply = form_turn(domain, id_number="３４０５０４１９８００１０１１２３ｘ")
    assert reply.slots()["id_number"] == "34050419800101123X"
    reply = form_turn(domain, id_number="3405 0419 8001 0112 3X")
    assert reply.slots()["id_number"] == "34050419800101123X"


def test_a_card_token_where_the_id_belongs_explains_the_id_format(core, domain):
    reply = form_turn(domain, id_number="pii_cd_0a1b2c3d4e5f6071")
    assert reply.slots()["id_number"] is None and "18位" in reply.text and core.calls == []
