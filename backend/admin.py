"""``python -m backend.admin``: operator commands run beside the service.

    python -m backend.admin quarantine list            # damaged blobs the gateway refuses
    python -m backend.admin quarantine release CID     # after the file was repaired
    python -m backend.admin epochs close               # close the open reward epoch now
    python -m backend.admin epochs list [--limit N]    # the newest closed epochs
    python -m backend.admin datasets create SLUG TITLE [--filter JSON] [--licence-terms T]
                                                   [--price WEI]
    python -m backend.admin datasets freeze DATASET_ID [--shard-bytes N] [--price WEI]
    python -m backend.admin datasets list              # datasets and their versions
    python -m backend.admin datasets price DATASET N WEI   # setVersionPrice (or the price
                                                       # a version not yet listed gets)
    python -m backend.admin datasets unlist|relist DATASET N   # setVersionListed

Settings come from the same ``SHOTBANK_*`` variables as the service. ``release``
re-verifies the stored bytes against the CID first and refuses while they still do not
match (``--force`` releases anyway, e.g. after deleting the file). ``price``, ``unlist``
and ``relist`` enqueue the operator's transaction in the outbox (``DATASET`` is an id or a
slug); the running service's submitter sends it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.errors import BackendError, ConfigurationError, EpochFundingUnknownError
from backend.models.datasets import DatasetCreate
from backend.models.epochs import MAX_EPOCH_PAGE, EpochStatus
from backend.services import datasets, epochs, licences
from backend.services.blobs import Quarantine
from ingest import errors as ingest_errors
from ingest.blobstore import LocalBlobStore
from ingest.cid import normalize_cid
from shotbank.chain.errors import ChainError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    quarantine = commands.add_parser("quarantine", help="blobs found damaged")
    actions = quarantine.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list quarantined blobs, oldest first")
    release = actions.add_parser("release", help="serve a repaired blob again")
    release.add_argument("cid")
    release.add_argument(
        "--force", action="store_true", help="release without re-verifying the stored bytes"
    )
    epochs_parser = commands.add_parser("epochs", help="reward epochs")
    epoch_actions = epochs_parser.add_subparsers(dest="action", required=True)
    epoch_actions.add_parser("close", help="close the open epoch now (idempotent per epoch)")
    listing = epoch_actions.add_parser("list", help="the newest closed epochs, newest first")
    listing.add_argument(
        "--limit", type=int, default=20, choices=range(1, MAX_EPOCH_PAGE + 1), metavar="1..100"
    )
    datasets_parser = commands.add_parser("datasets", help="datasets and frozen versions")
    dataset_actions = datasets_parser.add_subparsers(dest="action", required=True)
    create = dataset_actions.add_parser("create", help="define a dataset by a filter")
    create.add_argument("slug")
    create.add_argument("title")
    create.add_argument("--filter", default="{}", help="a DatasetFilter as JSON")
    create.add_argument("--description", default="")
    create.add_argument("--licence-terms", default="")
    create.add_argument("--price", default=None, help="default price of its versions (wei)")
    freeze = dataset_actions.add_parser("freeze", help="freeze the current match (packs later)")
    freeze.add_argument("dataset_id")
    freeze.add_argument("--shard-bytes", type=int, default=None)
    freeze.add_argument("--price", type=int, default=None, help="the version's price (wei)")
    dataset_actions.add_parser("list", help="datasets and their versions")
    price = dataset_actions.add_parser("price", help="change a version's price (wei)")
    price.add_argument("dataset", help="dataset id or slug")
    price.add_argument("number", type=int)
    price.add_argument("wei", type=int)
    for name, text in (("unlist", "take a version off sale"), ("relist", "put it back")):
        switch = dataset_actions.add_parser(name, help=text)
        switch.add_argument("dataset", help="dataset id or slug")
        switch.add_argument("number", type=int)
    return parser


def _listing(args: argparse.Namespace, *, settings: Settings, engine: Engine) -> int:
    outbox = licences.connect_outbox(engine, settings)
    if args.action == "price":
        tx = licences.change_price(
            engine, settings, outbox, dataset=args.dataset, number=args.number, price=args.wei
        )
        if tx is None:
            print(f"version {args.number} will be listed at {args.wei} wei")
            return 0
    else:
        tx = licences.change_listed(
            engine,
            settings,
            outbox,
            dataset=args.dataset,
            number=args.number,
            listed=args.action == "relist",
        )
    print(f"enqueued {tx.key} (outbox {tx.id}, nonce {tx.nonce}); the service sends it")
    return 0


#: Who a dataset made on the command line is recorded as when no operator is configured.
_CLI_AUTHOR = "0x" + "00" * 20


def _datasets(args: argparse.Namespace, *, settings: Settings, engine: Engine) -> int:
    author = settings.operators[0] if settings.operators else _CLI_AUTHOR
    now = datetime.now(UTC)
    try:
        if args.action in ("price", "unlist", "relist"):
            return _listing(args, settings=settings, engine=engine)
        if args.action == "create":
            request = DatasetCreate(
                slug=args.slug,
                title=args.title,
                description=args.description,
                filter=json.loads(args.filter),
                licence_terms=args.licence_terms,
                price=args.price,
            )
            with Session(engine) as db:
                made = datasets.create_dataset(db, request=request, created_by=author, now=now)
            print(f"{made.id}\t{made.slug}\t{json.dumps(made.filter, sort_keys=True)}")
            return 0
        if args.action == "freeze":
            version = datasets.freeze_version(
                engine,
                settings=settings,
                dataset_id=args.dataset_id,
                created_by=author,
                now=now,
                shard_bytes=args.shard_bytes,
                price=args.price,
            )
            print(
                f"version {version.number} {version.status.value}: {version.samples} samples "
                f"of {version.contributors} contributors (the service packs it)"
            )
            return 0
        with Session(engine) as db:
            page = datasets.list_datasets(db, limit=100)
            for item in page.items:
                print(f"{item.id}\t{item.slug}\t{item.title}")
                for version in datasets.dataset_view(db, dataset_id=item.id).versions:
                    print(
                        f"  v{version.number}\t{version.status.value}\t{version.samples}\t"
                        f"{version.version_hash or '-'}"
                    )
            if not page.items:
                print("no datasets", file=sys.stderr)
        return 0
    except (BackendError, ChainError, ValueError) as exc:
        # ValueError: a filter argument that is not JSON, or a slug/title out of bounds.
        message = exc.message if isinstance(exc, BackendError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1


def _epochs(action: str, *, limit: int, settings: Settings, engine: Engine) -> int:
    if action == "close":
        current = epochs.open_epoch(engine)
        try:
            closed = epochs.close_epoch(engine, settings=settings, number=current.number)
        except (ConfigurationError, EpochFundingUnknownError) as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        status = EpochStatus(closed.status).value
        print(
            f"epoch {closed.number} {status}: {closed.accepted_clips} clips accepted, "
            f"{closed.rejected_clips} rejected, {closed.allocated} wei allocated, "
            f"root {closed.root}"
        )
        return 0
    with Session(engine) as db:
        page = epochs.list_epochs(db, limit=limit)
    for summary in page.epochs:
        print(
            f"{summary.epoch}\t{summary.status.value}\t{summary.closed_at}\t"
            f"{summary.allocated}\t{summary.root}"
        )
    if not page.epochs:
        print("no closed epochs", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Run one command; returns the process exit status."""
    args = _parser().parse_args(argv)
    settings = settings if settings is not None else Settings()
    engine = create_db_engine(settings)
    try:
        if settings.auto_migrate:
            upgrade_to_head(engine)
        if args.command == "datasets":
            return _datasets(args, settings=settings, engine=engine)
        if args.command == "epochs":
            limit = getattr(args, "limit", 20)
            return _epochs(args.action, limit=limit, settings=settings, engine=engine)
        quarantine = Quarantine(engine)
        if args.action == "list":
            records = quarantine.records()
            for record in records:
                print(f"{record.cid}\t{record.detected_at.isoformat()}\t{record.reason}")
            if not records:
                print("no quarantined blobs", file=sys.stderr)
            return 0
        try:
            cid = normalize_cid(args.cid)
        except ingest_errors.InvalidCidError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not args.force:
            store = LocalBlobStore(settings.blob_path)
            try:
                store.verify(cid)
            except ingest_errors.BlobNotFoundError:
                print(f"error: {cid} is not stored; use --force to release it", file=sys.stderr)
                return 1
            except ingest_errors.BlobIntegrityError as exc:
                print(f"error: {cid} is still damaged: {exc}", file=sys.stderr)
                return 1
        if not quarantine.release(cid):
            print(f"error: {cid} is not quarantined", file=sys.stderr)
            return 1
        print(f"released {cid}")
        return 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
