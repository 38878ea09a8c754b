"""scripts/stack.py builds command lines that survive any random token."""
import argparse

from stack import Stack


def test_a_rasa_token_starting_with_a_dash_reaches_rasa_as_a_value(tmp_path, monkeypatch):
    # token_urlsafe() starts with "-" one time in 64; "--auth-token -x" made rasa exit with code 2.
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"")
    monkeypatch.setenv("RASA_TOKEN", "-dashfirst")
    stack = Stack(tmp_path / "data", model, tmp_path / "app", tmp_path / "rasa")
    parser = argparse.ArgumentParser()
    parser.add_argument("-t", "--auth-token")
    known, _ = parser.parse_known_args(stack.services["rasa"].argv[2:])
    assert known.auth_token == "-dashfirst"
