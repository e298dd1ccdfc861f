"""``shotbank datasets``: find dataset versions, buy a licence, list licences, download.

- ``shotbank datasets list`` -- every dataset with its versions (status, samples, size,
  price and listing status);
- ``shotbank datasets buy DATASET N`` -- buys a licence for version ``N`` on chain
  (``purchaseWithPermit``; ``--no-permit``: approve + purchase) and waits until the
  backend grants access (:meth:`ShotbankClient.buy <shotbank.client.ShotbankClient.buy>`);
- ``shotbank datasets licences [ADDRESS]`` -- the configured wallet's licences (a signed
  request) or ``ADDRESS``'s (public);
- ``shotbank datasets download DATASET N DIR`` -- the version's index, manifest and
  shards, verified by SHA-256 and CID, resumable; requests signed by the configured key.

``DATASET`` is a dataset id (32 hex digits) or its slug. The key comes from
``--key-file``, ``SHOTBANK_KEY_FILE`` or ``SHOTBANK_PRIVATE_KEY`` (never the command
line); the backend from ``--api``/``SHOTBANK_API_URL``; the chain from
``--rpc-url``/``SHOTBANK_RPC_URL``. ``--json`` prints JSON instead of text.

Exit status
-----------
==  ========================================================================
0   done
1   a failure: backend or RPC unreachable, not for sale, already licensed, balance
    short, price above --max-price, no licence for a download, a corrupt shard
2   a usage error (bad option, no key, a key on the command line, unknown dataset)
==  ========================================================================
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import click
from eth_account.signers.local import LocalAccount

from shotbank.cli.credentials import API_OPTION as _API_OPTION
from shotbank.cli.credentials import JSON_OPTION as _JSON_OPTION
from shotbank.cli.credentials import KEY_OPTION as _KEY_OPTION
from shotbank.cli.credentials import command_account, command_settings
from shotbank.client import ApiError, ClientError, ClientSettings, ShotbankClient
from shotbank.datasets.client import DatasetHandle, DatasetVersionHandle, DatasetVersionSummary
from shotbank.datasets.format import DatasetError
from shotbank.datasets.market import format_shot

__all__ = ["datasets", "parse_shot"]

_DATASET_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")
#: Most datasets a slug is looked up among.
_MAX_DATASETS: Final = 10_000
#: Most datasets ``list`` shows (each is one request for its versions).
_MAX_LISTED: Final = 1000


def parse_shot(text: str) -> int:
    """``"12.5"`` SHOT (or ``"12500000000000000000wei"``) as wei; ``ValueError`` if not."""
    value = text.strip().lower()
    if value.endswith("wei"):
        digits = value[:-3].strip()
        if not digits.isdigit():
            raise ValueError(f"not a whole number of wei: {text!r}")
        return int(digits)
    try:
        amount = Decimal(value.removesuffix("shot").strip()) * 10**18
    except InvalidOperation:
        raise ValueError(f"not an amount of SHOT: {text!r}") from None
    if amount != amount.to_integral_value() or amount <= 0:
        raise ValueError(f"not a positive amount with at most 18 decimals: {text!r}")
    return int(amount)


def _client(settings: ClientSettings, account: LocalAccount | None = None) -> ShotbankClient:
    return ShotbankClient.from_settings(settings, account=account)


def _fail(exc: Exception) -> click.ClickException:
    if isinstance(exc, ApiError):
        return click.ClickException(f"the backend answered {exc.status} {exc.code}: {exc.message}")
    return click.ClickException(str(exc))


def _find_dataset(ctx: click.Context, client: ShotbankClient, dataset: str) -> str:
    """The id of ``dataset`` (an id, or a slug looked up in the listing)."""
    if _DATASET_ID.match(dataset):
        return dataset
    for count, handle in enumerate(client.datasets(page_size=100)):
        if handle.info.slug == dataset:
            return handle.id
        if count >= _MAX_DATASETS:
            break
    raise click.UsageError(f"no dataset with the id or slug {dataset!r}", ctx)


def _version(ctx: click.Context, client: ShotbankClient, dataset: str, number: int) -> Any:
    return client.version(_find_dataset(ctx, client, dataset), number)


def _version_json(summary: DatasetVersionSummary) -> dict[str, Any]:
    data: dict[str, Any] = summary.model_dump(mode="json")
    return data


def _price(summary: DatasetVersionSummary) -> str:
    listing = summary.listing
    if listing is None:
        return "-"
    if listing.price is None:
        return listing.status
    return f"{format_shot(listing.price)} ({listing.status})"


_VERSION_ARGUMENTS = (
    click.argument("dataset"),
    click.argument("number", type=click.IntRange(1, 2**31 - 1)),
)


@click.group("datasets")
def datasets() -> None:
    """Find dataset versions, buy licences and download what you licensed."""


@datasets.command("list")
@_API_OPTION
@click.option(
    "--limit",
    type=click.IntRange(1, _MAX_LISTED),
    default=100,
    show_default=True,
    help="Most datasets shown (in id order).",
)
@_JSON_OPTION
@click.pass_context
def list_command(ctx: click.Context, api_url: str | None, limit: int, as_json: bool) -> None:
    """List the datasets and their versions (public: no key needed)."""
    settings = command_settings(ctx, api_url=api_url)
    try:
        with _client(settings) as client:
            found: list[DatasetHandle] = []
            for handle in client.datasets(page_size=min(limit, 100)):
                # The listing's pages hold definitions only; a dataset's own answer
                # carries its versions with their listings.
                found.append(client.dataset(handle.id))
                if len(found) >= limit:
                    break
    except ClientError as exc:
        raise _fail(exc) from None
    if as_json:
        items = [
            {
                "id": handle.id,
                "slug": handle.info.slug,
                "title": handle.info.title,
                "versions": [_version_json(v) for v in handle.info.versions],
            }
            for handle in found
        ]
        click.echo(json.dumps({"datasets": items}, indent=2))
        return
    if not found:
        click.echo("no datasets")
        return
    for handle in found:
        click.echo(f"{handle.id}  {handle.info.slug}  {handle.info.title}")
        for v in handle.info.versions:
            size = f"{v.total_bytes:,} bytes" if v.total_bytes is not None else "-"
            click.echo(
                f"  v{v.number:<4} {v.status:<8} {v.samples:>8} samples  {size:>18}  {_price(v)}"
            )


@datasets.command("buy")
@_VERSION_ARGUMENTS[0]
@_VERSION_ARGUMENTS[1]
@_API_OPTION
@_KEY_OPTION
@click.option(
    "--rpc-url",
    "--rpc",
    "rpc_url",
    metavar="URL",
    help="Chain RPC the purchase is sent through [default: $SHOTBANK_RPC_URL].",
)
@click.option(
    "--max-price",
    metavar="AMOUNT",
    help="Most you accept to pay: SHOT (12.5) or wei (12500000000000000000wei) "
    "[default: the listed price].",
)
@click.option(
    "--permit/--no-permit",
    default=True,
    show_default=True,
    help="One purchaseWithPermit transaction, or approve + purchase.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1, max=86_400),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the purchase and for the backend to grant access.",
)
@_JSON_OPTION
@click.pass_context
def buy(
    ctx: click.Context,
    dataset: str,
    number: int,
    api_url: str | None,
    key_file: Path | None,
    rpc_url: str | None,
    max_price: str | None,
    permit: bool,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Buy a licence for version NUMBER of DATASET and wait until access is granted."""
    settings = command_settings(ctx, api_url=api_url, rpc_url=rpc_url)
    limit = None
    if max_price is not None:
        try:
            limit = parse_shot(max_price)
        except ValueError as exc:
            raise click.UsageError(f"--max-price: {exc}", ctx) from None
    account = command_account(ctx, key_file, settings)
    try:
        with _client(settings, account) as client:
            version = _version(ctx, client, dataset, number)
            licence = client.buy(
                version, max_price=limit, permit=permit, timeout=timeout_s, progress=not as_json
            )
    except (ClientError, DatasetError) as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(licence.model_dump_json(indent=2))
        return
    click.echo(f"licensed {licence.version_id} to {licence.buyer}")
    click.echo(f"  paid       {format_shot(licence.price)}")
    click.echo(f"  tx         {licence.tx_hash} (block {licence.block_number})")
    click.echo(f"  download   shotbank datasets download {dataset} {number} DIR")


@datasets.command("licences")
@click.argument("address", required=False)
@_API_OPTION
@_KEY_OPTION
@_JSON_OPTION
@click.pass_context
def licences(
    ctx: click.Context,
    address: str | None,
    api_url: str | None,
    key_file: Path | None,
    as_json: bool,
) -> None:
    """List the configured wallet's licences (signed request), or ADDRESS's (public)."""
    settings = command_settings(ctx, api_url=api_url)
    if address is not None and not _ADDRESS.match(address):
        raise click.UsageError(f"ADDRESS {address!r} is not a 20-byte hex address", ctx)
    account = None if address is not None else command_account(ctx, key_file, settings)
    try:
        with _client(settings, account) as client:
            found = client.licences(address)
    except ClientError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(
            json.dumps(
                {"licences": [licence.model_dump(mode="json") for licence in found]}, indent=2
            )
        )
        return
    who = address or (account.address if account is not None else "")
    if not found:
        click.echo(f"no licences for {who}")
        return
    click.echo(f"licences of {who}, newest first")
    for licence in found:
        name = (
            f"dataset {licence.dataset_id} v{licence.number}"
            if licence.dataset_id is not None
            else "(not a version of this backend)"
        )
        click.echo(
            f"  {licence.version_id[:18]}…  {name}  {format_shot(licence.price)}  "
            f"block {licence.block_number}"
        )


@datasets.command("download")
@_VERSION_ARGUMENTS[0]
@_VERSION_ARGUMENTS[1]
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_API_OPTION
@_KEY_OPTION
@click.option(
    "--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Parallel shards."
)
@click.option(
    "--verify-cid",
    is_flag=True,
    help="Also check each shard's CID (the SHA-256 is always checked).",
)
@_JSON_OPTION
@click.pass_context
def download(
    ctx: click.Context,
    dataset: str,
    number: int,
    directory: Path,
    api_url: str | None,
    key_file: Path | None,
    workers: int,
    verify_cid: bool,
    as_json: bool,
) -> None:
    """Download version NUMBER of DATASET into DIRECTORY, verified and resumable."""
    settings = command_settings(ctx, api_url=api_url)
    account = command_account(ctx, key_file, settings)
    try:
        with _client(settings, account) as client:
            version: DatasetVersionHandle = _version(ctx, client, dataset, number)
            report = version.download(
                directory, workers=workers, progress=not as_json, verify_cid=verify_cid
            )
    except (ClientError, DatasetError) as exc:
        raise _fail(exc) from None
    summary = {
        "directory": str(report.directory),
        "shards": report.shards,
        "bytes_downloaded": report.bytes_downloaded,
        "skipped": sorted(report.skipped),
        "resumed": sorted(report.resumed),
        "restarted": sorted(report.restarted),
        "refetched": sorted(report.refetched),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"downloaded {report.shards} shards into {report.directory}: "
        f"{report.bytes_downloaded:,} bytes fetched, {len(report.skipped)} already in place"
    )
