"""``python -m backend.admin``: operator commands run beside the service.

    python -m backend.admin quarantine list            # damaged blobs the gateway refuses
    python -m backend.admin quarantine release CID     # after the file was repaired

Settings come from the same ``SHOTBANK_*`` variables as the service. ``release``
re-verifies the stored bytes against the CID first and refuses while they still do not
match (``--force`` releases anyway, e.g. after deleting the file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.services.blobs import Quarantine
from ingest import errors as ingest_errors
from ingest.blobstore import LocalBlobStore
from ingest.cid import normalize_cid


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
    return parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Run one command; returns the process exit status."""
    args = _parser().parse_args(argv)
    settings = settings if settings is not None else Settings()
    engine = create_db_engine(settings)
    try:
        if settings.auto_migrate:
            upgrade_to_head(engine)
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
