"""``shotbank validator run``: score clips for the network as a staked validator.

The node itself lives in the scoring package (``scoring.node``, which needs torch,
open_clip and the rest of the scoring extra); this module only reads the options, the
key and the settings, and imports the node when the command runs, so the SDK stays
light for contributors and trainers.

Settings come from ``SHOTBANK_VALIDATOR_*`` variables, ``SHOTBANK_API_URL`` and a TOML or
JSON file (``--config``), see ``scoring.node.config``; the options below override them.
The wallet key comes from ``--key-file``, ``key_file`` in the config,
``SHOTBANK_KEY_FILE`` or ``SHOTBANK_PRIVATE_KEY``, never from the command line.

Exit status
-----------
==  ========================================================================
0   stopped by SIGINT/SIGTERM after returning its unfinished leases
1   a runtime failure (backend or chain unreachable, cannot sign in...)
2   a usage error (bad option or setting, no key, a key on the command line)
3   the model was refused (weights whose SHA-256 is not the pinned one, unknown model)
4   the key has no active stake in the ValidatorRegistry
5   the scoring extra is not installed
==  ========================================================================
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Final

import click
from pydantic import ValidationError

from shotbank.cli.credentials import resolve_account
from shotbank.client import ClientError, ClientSettings, KeyLoadError

__all__ = [
    "EXIT_FAILED",
    "EXIT_MODEL_REFUSED",
    "EXIT_NOT_INSTALLED",
    "EXIT_NOT_STAKED",
    "INSTALL_HINT",
    "validator",
]

EXIT_FAILED: Final = 1
EXIT_MODEL_REFUSED: Final = 3
EXIT_NOT_STAKED: Final = 4
EXIT_NOT_INSTALLED: Final = 5
INSTALL_HINT: Final = (
    "install the scoring extra: pip install 'shotbank-server[scoring]' (in a Shotbank "
    "checkout, scripts/setup.sh installs it with the exact pins of requirements/scoring.lock)"
)
_LOGGER: Final = "scoring.node"
_HANDLER_NAME: Final = "shotbank-cli"


def _configure_logging(verbose: bool) -> None:
    logger = logging.getLogger(_LOGGER)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Replaced, not kept: a handler holds the stderr of the run that made it.
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.set_name(_HANDLER_NAME)
    logger.addHandler(handler)
    logger.propagate = False


def _settings_problem(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)
    )


@click.group("validator")
def validator() -> None:
    """Validate clips for Shotbank: score them and sign reports (needs a staked key)."""


@validator.command("run")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Settings file (.toml or .json) [default: $SHOTBANK_VALIDATOR_CONFIG_FILE].",
)
@click.option(
    "--api",
    "api_url",
    metavar="URL",
    help="Backend URL [default: $SHOTBANK_VALIDATOR_API_URL, $SHOTBANK_API_URL, "
    "else http://127.0.0.1:8000].",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Wallet key: a file with the hex key or an encrypted JSON keystore "
    "[default: key_file in the config, $SHOTBANK_KEY_FILE; or set SHOTBANK_PRIVATE_KEY].",
)
@click.option("--rpc", "rpc_url", metavar="URL", help="Chain RPC for the stake check.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Duplicate index, report journal, downloads [default: var/validator].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Prometheus endpoint port, 0 disables [default: 9464].",
)
@click.option("--workers", type=click.IntRange(0, 64), help="Decode worker processes.")
@click.option("--max-leases", type=click.IntRange(1, 256), help="Leases held at once.")
@click.option("--device", help="auto, cpu, cuda, cuda:N [default: auto].")
@click.option("--ray", "ray_address", metavar="ADDRESS", help="Run inference on a Ray cluster.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def run(
    ctx: click.Context,
    config_file: Path | None,
    api_url: str | None,
    key_file: Path | None,
    rpc_url: str | None,
    state_dir: Path | None,
    metrics_port: int | None,
    workers: int | None,
    max_leases: int | None,
    device: str | None,
    ray_address: str | None,
    verbose: bool,
) -> None:
    """Lease clips, score them, sign and submit reports until stopped (Ctrl-C / SIGTERM).

    Exit status: 0 stopped cleanly, 1 runtime failure, 2 usage error, 3 model refused
    (tampered weights), 4 not staked, 5 scoring extra not installed.
    """
    try:
        from scoring.node.config import NodeSettings
    except ImportError as exc:
        _not_installed(ctx, exc)
    overrides: dict[str, Any] = {
        name: value
        for name, value in {
            "config_file": config_file,
            "api_url": api_url,
            "rpc_url": rpc_url,
            "state_dir": state_dir,
            "metrics_port": metrics_port,
            "workers": workers,
            "max_leases": max_leases,
            "device": device,
            "ray_address": ray_address,
        }.items()
        if value is not None
    }
    try:
        settings = NodeSettings(**overrides)
    except ValidationError as exc:
        raise click.UsageError(f"invalid setting: {_settings_problem(exc)}", ctx) from None
    except ValueError as exc:  # NodeConfigError: an unreadable or refused config file
        raise click.UsageError(str(exc), ctx) from None
    try:
        account = resolve_account(
            key_file or settings.key_file, ClientSettings(), interactive=sys.stdin.isatty()
        )
    except KeyLoadError as exc:
        raise click.UsageError(str(exc), ctx) from None
    except ValidationError as exc:
        raise click.UsageError(f"invalid setting: {_settings_problem(exc)}", ctx) from None
    _configure_logging(verbose)
    try:
        from scoring.node.node import ValidatorNode
    except ImportError as exc:
        _not_installed(ctx, exc)
    ctx.exit(_run_node(ValidatorNode(settings, account)))


def _not_installed(ctx: click.Context, exc: ImportError) -> Any:
    missing = exc.name or str(exc)
    click.echo(
        f"error: shotbank validator needs {missing!r}, which is not installed; {INSTALL_HINT}",
        err=True,
    )
    ctx.exit(EXIT_NOT_INSTALLED)


def _run_node(node: Any) -> int:
    """Start ``node``, run it until a signal, and map failures to exit statuses."""
    from scoring.errors import ModelError, UnknownProfileError
    from scoring.node.errors import NodeConfigError, NodeError, NotStakedError
    from shotbank.chain.errors import ChainError

    log = logging.getLogger(_LOGGER)
    stop, stop_now = threading.Event(), threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second %s: returning leases without waiting", signal.Signals(signum).name)
            stop_now.set()
        else:
            log.info("received %s", signal.Signals(signum).name)
            stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            node.start()
        except ImportError as exc:  # torch, open_clip, faiss... are imported by start()
            log.error(
                "shotbank validator needs %r, which is not installed; %s",
                exc.name or str(exc),
                INSTALL_HINT,
            )
            return EXIT_NOT_INSTALLED
        except (ModelError, UnknownProfileError) as exc:
            log.error("the model was refused: %s", exc)
            return EXIT_MODEL_REFUSED
        except NotStakedError as exc:
            log.error("%s", exc)
            return EXIT_NOT_STAKED
        except NodeConfigError as exc:
            log.error("%s", exc)
            return click.UsageError.exit_code
        except (NodeError, ClientError, ChainError, OSError) as exc:
            log.error("cannot start: %s", exc)
            return EXIT_FAILED
        if stop.is_set():
            node.close()
            return 0
        try:
            node.run(stop, stop_now=stop_now)
        except Exception:
            # run() has returned the leases it held on its way out.
            log.exception("the node stopped on an unexpected error")
            return EXIT_FAILED
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
