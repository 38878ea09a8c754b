"""Runs the gateway process: logging configured once (with PII masking), then uvicorn."""
from __future__ import annotations

import argparse

import uvicorn

from gateway.app import create_app
from gateway.logs import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(description="Anju gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    configure_logging()
    # log_config=None: uvicorn's own loggers go through the masking handler as well.
    uvicorn.run(create_app(), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
