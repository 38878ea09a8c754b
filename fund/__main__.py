"""Runs the sandbox core process: logging configured once, settings checked, then uvicorn."""
from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import ValidationError

from bot.observability import configure_logging
from fund.api import create_app
from fund.settings import describe, get_settings

logger = logging.getLogger("fund")


def main() -> None:
    parser = argparse.ArgumentParser(description="Anju sandbox core")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The core masks personal data where it writes it (fund/privacy.py); no clear values are logged.
    configure_logging("INFO")
    try:
        settings = get_settings()
    except ValidationError as exc:  # one line naming the setting, not a traceback
        logger.error("core.settings.refused %s", describe(exc))
        sys.exit(2)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
