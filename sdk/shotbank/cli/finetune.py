"""``shotbank finetune``: fine-tune the CLIP scoring model on a downloaded dataset version.

The training itself lives in the scoring package (:mod:`scoring.finetune`, which needs
torch, open_clip and the rest of the scoring extra); this module reads the options and
imports it only when the command runs, so the SDK stays light for everyone else.

The output directory receives the checkpoints, ``model.safetensors`` and ``run.json``
(the run record: dataset version, base model and hash, hyperparameters, metrics, output
weights hash). ``--json`` prints that record as the last line instead of the table.

``--register`` then registers the run with the backend (``POST /api/v1/models``,
``docs/api/models.md``): ``--api``/``SHOTBANK_API_URL`` names it, and the request is
signed (``Authorization: Shotbank-Signature``) by the configured key (``--key-file``,
``SHOTBANK_KEY_FILE`` or ``SHOTBANK_PRIVATE_KEY``; :mod:`~shotbank.cli.credentials`),
whose wallet must hold a licence for the version. The key is loaded before training
starts, so a missing one fails at once, not after the run. It prints the model's hash
and its lineage URL (on stderr with ``--json``, whose last stdout line stays the record).

Exit status
-----------
==  ========================================================================
0   the run finished
1   a runtime failure (a clip that cannot be read, a file that cannot be written...)
2   a usage error (bad option, not a dataset version, too few samples)
3   the model was refused (unknown model, weights whose SHA-256 is not the pinned one)
5   the scoring extra is not installed
6   the run finished (its files are written) but registering it failed
==  ========================================================================
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import click
from eth_account.signers.local import LocalAccount
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from shotbank.cli.credentials import resolve_account
from shotbank.cli.validator import EXIT_FAILED, EXIT_MODEL_REFUSED, EXIT_NOT_INSTALLED, INSTALL_HINT
from shotbank.client import ApiError, ClientError, ClientSettings, KeyLoadError, ShotbankClient
from shotbank.client.lineage import Model, lineage_path

__all__ = ["EXIT_NOT_REGISTERED", "finetune"]

#: The run finished but the backend did not register it.
EXIT_NOT_REGISTERED: Final = 6

_DEFAULT_MODEL: Final = "shotbank-tiny"
_DEFAULT_PRETRAINED: Final = "synthetic-v1"


@click.command("finetune")
@click.option(
    "--shards",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A downloaded dataset version: the folder with index.json and its shards.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: checkpoints, model.safetensors, run.json.",
)
@click.option("--base-model", default=_DEFAULT_MODEL, show_default=True, help="open_clip model.")
@click.option(
    "--pretrained",
    default=_DEFAULT_PRETRAINED,
    show_default=True,
    help="Registered weights tag, or a local weights file.",
)
@click.option(
    "--weights-sha256", metavar="HEX", help="Pin for a local weights file the registry lacks."
)
@click.option("--steps", type=click.IntRange(1, 10_000_000), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(2, 4096), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True), default=1e-4, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(0, 10), default=0.05, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--frames", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option(
    "--held-out",
    "held_out_fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.25,
    show_default=True,
    help="Share of samples held out for evaluation (by a hash of key and seed).",
)
@click.option(
    "--eval-every", type=click.IntRange(0, 10_000_000), default=0, help="0: start and end only."
)
@click.option("--checkpoint-every", type=click.IntRange(0, 10_000_000), default=0, help="0: none.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--device", help="cpu, cuda, cuda:N [default: cuda when present, else cpu].")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@click.option(
    "--register",
    is_flag=True,
    help="Register the finished run with the backend (needs a licence for the version).",
)
@click.option(
    "--api",
    "api_url",
    metavar="URL",
    help="Backend URL for --register [default: $SHOTBANK_API_URL, else http://127.0.0.1:8000].",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Wallet key for --register: a hex key file or an encrypted JSON keystore "
    "[default: $SHOTBANK_KEY_FILE; or set SHOTBANK_PRIVATE_KEY].",
)
@click.pass_context
def finetune(
    ctx: click.Context,
    /,
    as_json: bool,
    register: bool,
    api_url: str | None,
    key_file: Path | None,
    **options: Any,
) -> None:
    """Fine-tune the scoring model contrastively (frames <-> scene/lighting/camera text)
    on a dataset version, with held-out retrieval before and after; --register records
    the run with the backend and prints the model hash and its lineage URL.

    Exit status: 0 done, 1 runtime failure, 2 usage error, 3 model refused, 5 scoring
    extra not installed, 6 the run finished but registering it failed.
    """
    try:
        from scoring.errors import ModelError
        from scoring.finetune import FinetuneConfig, FinetuneError, register_run
        from scoring.finetune import finetune as run_finetune
    except ImportError as exc:
        click.echo(
            f"error: shotbank finetune needs {exc.name or str(exc)!r}, which is not "
            f"installed; {INSTALL_HINT}",
            err=True,
        )
        ctx.exit(EXIT_NOT_INSTALLED)
    settings = {name: value for name, value in options.items() if value is not None}
    try:
        config = FinetuneConfig(**settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise click.UsageError(f"invalid option: {problems}", ctx) from None
    registrar = _Registrar.configure(ctx, api_url, key_file) if register else None
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("fine-tuning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    try:
        with bar:
            task = bar.add_task("steps", total=config.steps, loss="-")

            def on_progress(event: Any) -> None:
                if event.metrics is not None:
                    recall = event.metrics.text_to_clip["r@1"]
                    bar.console.print(f"step {event.step}: held-out text->clip R@1 {recall:.3f}")
                else:
                    bar.update(task, completed=event.step, loss=f"{event.loss:.4f}")

            result = run_finetune(config, progress=on_progress)
    except FinetuneError as exc:
        raise click.UsageError(str(exc), ctx) from None
    except ModelError as exc:
        click.echo(f"error: the model was refused: {exc}", err=True)
        ctx.exit(EXIT_MODEL_REFUSED)
    except (OSError, ValueError) as exc:  # SampleReadError is a ValueError
        click.echo(f"error: {exc}", err=True)
        ctx.exit(EXIT_FAILED)
    record = result.record
    if as_json:
        click.echo(json.dumps(record.model_dump(mode="json"), sort_keys=True))
    else:
        _summary(Console(), record)
    if registrar is not None:
        registrar.register(ctx, result, register_run, err=as_json)


class _Registrar:
    """Where ``--register`` sends the run, and as whom (resolved before training)."""

    def __init__(self, settings: ClientSettings, account: LocalAccount) -> None:
        self.settings = settings
        self.account = account

    @classmethod
    def configure(
        cls, ctx: click.Context, api_url: str | None, key_file: Path | None
    ) -> _Registrar:
        try:
            settings = ClientSettings() if api_url is None else ClientSettings(api_url=api_url)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise click.UsageError(f"invalid setting: {problems}", ctx) from None
        try:
            account = resolve_account(key_file, settings, interactive=sys.stdin.isatty())
        except KeyLoadError as exc:
            raise click.UsageError(str(exc), ctx) from None
        return cls(settings, account)

    def register(
        self,
        ctx: click.Context,
        result: Any,
        register_run: Callable[[ShotbankClient, Any], Model],
        *,
        err: bool,
    ) -> None:
        """Register the run (a signed request), print the model hash and lineage URL."""
        where = self.settings.api_url
        try:
            # Signed requests: no sign-in round trip, and no session to expire mid-run.
            with ShotbankClient.from_settings(self.settings, account=self.account) as client:
                model = register_run(client, result)
        except ApiError as exc:
            click.echo(
                f"error: the backend at {where} did not register the run: {exc.status} "
                f"{exc.code}: {exc.message} (the run is in {result.record_path})",
                err=True,
            )
            ctx.exit(EXIT_NOT_REGISTERED)
        except ClientError as exc:
            click.echo(
                f"error: cannot register the run with {where}: {exc} (the run is in "
                f"{result.record_path})",
                err=True,
            )
            ctx.exit(EXIT_NOT_REGISTERED)
        click.echo(f"model    {model.hash}", err=err)
        click.echo(f"lineage  {where}{lineage_path(model.hash)}", err=err)


def _summary(console: Console, record: Any) -> None:
    """Base vs fine-tuned held-out retrieval, and where the weights are."""
    table = Table(
        title=f"held-out retrieval ({record.dataset.held_out_samples} samples)",
        caption="T->C: a text finds its clip; C->T: a clip finds its text",
    )
    table.add_column("model")
    for direction in ("T->C", "C->T"):
        for k in ("r@1", "r@5"):
            table.add_column(f"{direction} {k.upper()}", justify="right")
    for label, metrics in (("base", record.base_metrics), ("fine-tuned", record.final_metrics)):
        values = [*metrics.text_to_clip.values(), *metrics.clip_to_text.values()]
        table.add_row(label, *(f"{v:.3f}" for v in values))
    console.print(table)
    console.print(f"weights  {record.output.file}  sha256 {record.output.sha256}")
    console.print(f"dataset  {record.dataset.version_hash}")
