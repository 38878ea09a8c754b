"""Runs the sandbox core process: logging configured once, then uvicorn."""
from __future__ import annotations

import argparse
import logging

import uvicorn

from fund.api import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Anju sandbox core")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The core masks personal data where it writes it (fund/privacy.py); no clear values are logged.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
