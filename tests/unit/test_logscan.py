import datetime as dt
import tempfile
from pathlib import Path

from fund.id_numbers import make_id_number
from gateway.privacy import mask_id_number, mask_phone
from logscan import scan_dir, scan_text

VALID_ID = make_id_number("340503", dt.date(1960, 5, 17), 123)


def test_a_clear_id_number_or_phone_is_found_and_not_echoed():
    findings = scan_text(f"chat.turn text=我的身份证{VALID_ID}\nsms to 13812345678 sent", Path("a.log"))
    assert [f.kind for f in findings] == ["ID number", "mobile number"]
    assert VALID_ID not in str(findings[0]) and "13812345678" not in str(findings[1])


def test_masked_values_tokens_and_timestamps_pass():
    text = (f"id={mask_id_number(VALID_ID)} phone={mask_phone('13812345678')} token=pii_ph_a13812345678bcde "
            "ts=1763900000000 order=13812345678901")
    assert scan_text(text, Path("a.log")) == []


def test_an_18_digit_run_with_a_wrong_checksum_is_not_an_id():
    wrong = VALID_ID[:17] + ("0" if VALID_ID[17] != "0" else "1")
    assert scan_text(f"number {wrong}", Path("a.log")) == []


def test_scan_dir_reads_logs_below_the_root():
    # Not pytest's tmp_path: that lies inside the folder the whole run's log scan reads.
    with tempfile.TemporaryDirectory(prefix="logscan-test-") as tmp:
        check_scan_dir(Path(tmp))


def check_scan_dir(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "gateway.log").write_text("ok\n", encoding="utf-8")
    (tmp_path / "log" / "actions.log").write_text(f"leak {VALID_ID}\n", encoding="utf-8")
    scanned, findings = scan_dir(tmp_path)
    assert scanned == 2 and len(findings) == 1 and findings[0].path.name == "actions.log"


def test_planted_names_and_card_numbers_are_found_even_when_no_pattern_would():
    findings = scan_text("staff.transcript text=我叫韦娜伟\ncard=6222021234567890123", Path("a.log"))
    assert [f.kind for f in findings] == ["planted value", "planted value"]
