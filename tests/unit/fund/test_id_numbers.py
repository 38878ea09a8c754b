import datetime as dt

import pytest

from fund import id_numbers


@pytest.mark.parametrize("number", ["11010519491231002X", "11010519491231002x", "320402199403120454"])
def test_published_examples_are_valid(number):
    assert id_numbers.validate(number) == number.upper()


def test_checksum_matches_independent_computation():
    first17 = "34050319900618910"
    total = 3*7 + 4*9 + 0*10 + 5*5 + 0*8 + 3*4 + 1*2 + 9*1 + 9*6 + 0*3 + 0*7 + 6*9 + 1*10 + 8*5 + 9*8 + 1*4 + 0*2
    assert id_numbers.check_char(first17) == "10X98765432"[total % 11]


def test_wrong_check_character_is_a_checksum_error():
    with pytest.raises(id_numbers.InvalidIdChecksum):
        id_numbers.validate("110105194912310021")


@pytest.mark.parametrize("number", ["", "1101051949123100", "11010519491231002Y", "1101051949123100211",
                                    "110105194913310028", "11010518991231002X", "abc' OR 1=1 --"])
def test_malformed_numbers_are_format_errors(number):
    with pytest.raises(id_numbers.InvalidIdNumber) as caught:
        id_numbers.validate(number)
    assert caught.type is id_numbers.InvalidIdNumber


def test_made_numbers_validate_and_carry_birth_date():
    number = id_numbers.make_id_number("320402", dt.date(1984, 2, 29), 17)
    assert id_numbers.validate(number) == number
    assert id_numbers.birth_date(number) == dt.date(1984, 2, 29)


def test_age_counts_completed_years():
    born = dt.date(1966, 11, 24)
    assert id_numbers.age_on(born, dt.date(2026, 11, 23)) == 59
    assert id_numbers.age_on(born, dt.date(2026, 11, 24)) == 60
