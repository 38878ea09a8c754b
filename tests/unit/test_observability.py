"""Every process logs masked lines with the turn's request id; JSON lines parse for a log collector."""
import json
import logging

import pytest

from bot.observability import (REQUEST_ID, JsonFormatter, MaskingFilter, accepted_request_id,
                               current_request_id, new_request_id)


def record(message: str, *args) -> logging.LogRecord:
    return logging.LogRecord("gateway.test", logging.INFO, __file__, 1, message, args, None)


def test_a_json_line_carries_the_request_id_and_no_clear_id_number():
    token = REQUEST_ID.set("rid-0123456789")
    try:
        rec = record("chat.turn text=%s", "我的身份证340104199001011234")
        MaskingFilter().filter(rec)
        line = json.loads(JsonFormatter().format(rec))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "rid-0123456789" and line["level"] == "INFO" and line["logger"] == "gateway.test"
    assert "340104199001011234" not in line["msg"] and "1234" in line["msg"]
    assert line["ts"].endswith("+00:00")


@pytest.mark.parametrize("given", ["short", "x" * 65, "abc\ndef-ghijk", "rid 0123456789", None, 12345678])
def test_a_request_id_that_could_forge_log_lines_is_not_taken(given):
    assert accepted_request_id(given) is None


def test_ids_are_fresh_and_unset_outside_a_turn():
    assert current_request_id() is None
    assert accepted_request_id(new_request_id()) and new_request_id() != new_request_id()
