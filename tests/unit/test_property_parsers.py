"""Property tests of the parsers hostile input reaches first (issue 20: hostile input at volume):
whatever the text or bytes, they answer or refuse cleanly, and never let a valid ID number through
unmasked."""
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.components.numerals import parse_amount, parse_ratio, parse_years
from bot.pii import mask_text
from fund.id_numbers import InvalidIdChecksum, InvalidIdNumber, make_id_number, validate
from speech.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

FAST = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
ID_NUMBERS = st.builds(make_id_number, st.sampled_from(["320402", "340503", "110101", "440305"]),
                       st.dates(dt.date(1930, 1, 1), dt.date(2010, 12, 31)), st.integers(0, 999))


@FAST
@given(st.text(max_size=60))
def test_any_text_is_an_id_number_or_a_clear_refusal(text):
    try:
        number = validate(text)
    except (InvalidIdNumber, InvalidIdChecksum) as refused:
        assert str(refused)  # a Chinese sentence for the citizen
    else:
        assert len(number) == 18


@FAST
@given(ID_NUMBERS, st.integers(0, 16))
def test_a_valid_id_number_with_one_digit_changed_is_refused(number, position):
    changed = number[:position] + str((int(number[position]) + 1) % 10) + number[position + 1:]
    try:
        validate(changed)
    except (InvalidIdNumber, InvalidIdChecksum):
        return
    raise AssertionError(f"{changed} (from {number}) passed the checksum")


@FAST
@given(st.text(max_size=40), ID_NUMBERS, st.text(max_size=40))
def test_an_id_number_inside_any_text_is_masked(before, number, after):
    masked = mask_text(f"{before} {number} {after}")
    assert number not in masked


@FAST
@given(st.text(max_size=80))
def test_numeral_parsers_answer_a_number_or_nothing(text):
    for parse in (parse_amount, parse_years, parse_ratio):
        value = parse(text)
        assert value is None or isinstance(value, (int, float))


@FAST
@given(st.binary(max_size=4000))
def test_any_g711_bytes_decode_to_pcm_of_twice_the_length_and_round_trip(data):
    for decode, encode in ((alaw_decode, alaw_encode), (ulaw_decode, ulaw_encode)):
        pcm = decode(data)
        assert len(pcm) == 2 * len(data)
        assert decode(encode(pcm)) == pcm  # G.711 codes are fixed points of decode∘encode
