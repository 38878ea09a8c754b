"""Runs the gateway process: logging configured once (with PII masking), then uvicorn."""
from __future__ import annotations

import argparse

import uvicorn

from gateway.app import create_app
from gateway.logs import configure_logging
from gateway.settings import settings_or_exit


def main() -> None:
    parser = argparse.ArgumentParser(description="Anju gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    configure_logging()
    settings = settings_or_exit()
    # log_config=None: uvicorn's own loggers go through the masking handler as well.
    # ws_max_size: a frame larger than the largest chat message is refused by the server itself.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None,
                ws_max_size=settings.ws_max_frame_bytes * 4)


if __name__ == "__main__":
    main()
