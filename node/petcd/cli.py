"""The ``petcd`` command: parse etcd-style configuration, set up logging, run the server.

Exit codes and output follow etcd 3.5.1:

* ``--version``: version text on stdout, exit 0 (works without the server package);
* ``-h``/``--help``: flag listing on stdout, exit 0;
* flag syntax/value errors: Go-style message and usage on stderr, exit 2;
* configuration errors: ``{"level":"warn",...,"msg":"failed to verify flags","error":...}``
  on stderr, exit 1 (exit 2 for an unknown ``--log-level``, where etcd panics);
* a flag and its ``ETCD_*`` variable both set: a ``fatal`` record naming the variable, exit 1;
* bootstrap errors raised by the server as :class:`petcd.config.ConfigError`: ``failed to
  start etcd`` then fatal ``discovery failed``, exit 1;
* SIGINT/SIGTERM: the server task is cancelled, exit 0.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, cast

from petcd import config as config_mod
from petcd import errors
from petcd.config import Config, ConfigError, EnvConflictError, FlagError, HelpRequested
from petcd.logutil import FatalError, Logger, new_logger

__all__ = ["main"]


def _emit_notices(logger: Logger, cfg: Config) -> None:
    for level, msg, fields in cfg.notices:
        logger.log(level, msg, **fields)
    cfg.notices.clear()


def _parse(argv: Sequence[str]) -> Config | int:
    """Config, or the exit code after reporting why there is none."""
    boot = new_logger("info")
    try:
        return config_mod.parse(argv[1:], os.environ)
    except HelpRequested:
        sys.stdout.write(config_mod.help_text())
        return 0
    except FlagError as exc:
        sys.stderr.write(f"{exc}\n{config_mod.usage_text()}")
        return exc.exit_code
    except ConfigError as exc:
        for level, msg, fields in exc.notices:
            boot.log(level, msg, **fields)
        return _report_config_error(boot, argv, exc)


def _report_config_error(boot: Logger, argv: Sequence[str], exc: ConfigError) -> int:
    if isinstance(exc, EnvConflictError):
        boot.log("fatal", exc.log_msg, _depth=2, **{"environment-variable": exc.env_var})
        return exc.exit_code
    boot.info("Running: ", args=list(argv))
    boot.warning(exc.log_msg, error=str(exc))
    if str(exc) == errors.CFG_UNSET_ADVERTISE_CLIENT_URLS:
        boot.warning("advertise client URLs are not set", error=str(exc))
    return exc.exit_code


async def _serve(cfg: Config, logger: Logger) -> None:
    """Run the server until it returns or a SIGINT/SIGTERM arrives."""
    # Imported lazily: --version/--help must work without the server package.
    node = importlib.import_module("petcd.assembly")
    run = cast(Callable[[Config, Logger], Awaitable[None]], node.run)
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run(cfg, logger))

    def on_signal(sig: signal.Signals) -> None:
        logger.info("received signal; shutting down", signal=sig.name)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run(main)` on uvloop's event loop when it is installed (less CPU per request:
    its loop, timers and socket transports are C), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``petcd``; returns the process exit code."""
    args = list(sys.argv if argv is None else argv)
    if len(args) > 1 and args[1] == "snapshot":  # `petcd snapshot restore ...` (etcdutl's)
        return importlib.import_module("petcd.snapshot_cli").main(args[2:])  # type: ignore[no-any-return]
    parsed = _parse(args)
    if isinstance(parsed, int):
        return parsed
    cfg = parsed
    if cfg.version:
        sys.stdout.write(config_mod.version_text())
        return 0
    logger = new_logger(cfg.log_level, cfg.log_outputs)
    _emit_notices(logger, cfg)
    if cfg.settings.failpoints:
        # gofail arms GOFAIL_FAILPOINTS at init, before etcd opens its data: so do we.
        importlib.import_module("petcd.storage.failpoints").reload(cfg.settings.failpoints)
    logger.info("Running: ", args=args)
    try:
        _run_loop(_serve(cfg, logger))
    except ConfigError as exc:
        logger.warning("failed to start etcd", error=str(exc))
        try:
            logger.fatal("discovery failed", error=str(exc))
        except FatalError:
            return 1
    except FatalError:
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
