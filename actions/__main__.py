"""`python -m actions --port N` (Rasa venv): the action server, on loopback, token-protected.

scripts/stack.py starts it this way instead of `rasa run actions` (see actions/server.py).
"""
from __future__ import annotations

import argparse
import logging
import sys

from actions.server import serve
from actions.settings import SettingsError, get_settings
from bot.observability import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actions", description="Runs Anju's action server.")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args(argv)
    configure_logging("INFO")
    try:
        settings = get_settings()
        settings.check_for_start()
    except (SettingsError, ValueError) as exc:
        logging.getLogger("actions").error("actions.server.refused error=%s", exc)
        return 2
    serve(args.port, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
