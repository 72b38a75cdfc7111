"""Command line: ``python -m toxiproxy_server [--host H] [--port P] [--config FILE]``.

Flags mirror ``toxiproxy-server`` (single or double dash): ``host`` (default
localhost), ``port`` (8474), ``config`` (a JSON file of proxies to populate at
start), ``seed`` (random seed for toxicity, jitter, slicing) and ``version``.
The log level comes from ``LOG_LEVEL`` (debug, info, warn, error; default info).
SIGINT/SIGTERM stop every proxy and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from . import __version__
from .api import Api
from .errors import ApiError
from .httpserver import serve
from .jsonfields import decode_body
from .stage import RNG

log = logging.getLogger("toxiproxy_server")

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse toxiproxy-server's flags."""
    parser = argparse.ArgumentParser(
        prog="toxiproxy-server", description="Toxiproxy-compatible TCP fault-injection proxy"
    )
    parser.add_argument("-host", "--host", default="localhost", help="host for the API")
    parser.add_argument("-port", "--port", type=int, default=8474, help="port for the API")
    parser.add_argument("-config", "--config", default="", help="JSON file of proxies to load")
    parser.add_argument("-seed", "--seed", type=int, default=None, help="random seed")
    parser.add_argument("-version", "--version", action="store_true", help="print the version")
    return parser.parse_args(argv)


async def load_config(api: Api, path: str) -> None:
    """Populate proxies from a JSON file, logging (not raising) any failure, as Toxiproxy does."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        log.error("error reading config file %s: %s", path, exc)
        return
    try:
        proxies, error = await api.collection.populate(decode_body(raw))
    except ApiError as exc:
        log.error("failed to populate proxies from file: %s", exc.message)
        return
    if error is not None:
        log.error("failed to populate proxies from file: %s", error.message)
    else:
        log.info("populated %d proxies from file", len(proxies))


async def run(args: argparse.Namespace) -> None:
    """Serve the API until SIGINT or SIGTERM, then stop all proxies."""
    api = Api()
    if args.config:
        await load_config(api, args.config)
    server = await serve(args.host, args.port, api.handle)
    assert server.server is not None
    addresses = ", ".join(str(sock.getsockname()[:2]) for sock in server.server.sockets)
    log.info("Starting Toxiproxy HTTP server on %s", addresses)
    # Printed for supervisors (and tests) waiting for readiness.
    print(f"toxiproxy-server listening on {args.host}:{args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.close()
    await api.collection.clear()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``toxiproxy-server`` and ``python -m toxiproxy_server``."""
    args = parse_args(argv)
    if args.version:
        print(f"toxiproxy-server version {__version__}")
        return 0
    level = LEVELS.get(os.environ.get("LOG_LEVEL", "info").lower(), logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.seed is not None:
        RNG.seed(args.seed)
    try:
        asyncio.run(run(args))
    except OSError as exc:
        log.error("cannot start API server: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
