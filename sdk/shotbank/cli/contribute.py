"""``shotbank contribute DIR``: upload every clip of a directory with its annotation.

For each clip (see :mod:`shotbank.cli.scan` for what counts as one):

1. check the annotation locally (invalid clips are listed with their field errors and
   not uploaded);
2. hash the bytes (once: the hash is kept in the state file by size and mtime);
3. upload with tus, resuming an earlier partial upload from the server's offset
   (a new one when the server no longer knows it);
4. ``POST /api/v1/clips`` with an ``Idempotency-Key`` derived from the bytes' hash, the
   annotation and the upload id, so a crash between the request and the state file
   write is harmless: the rerun's request is answered with the same clip.

Results and exit status
-----------------------
``submitted`` and ``already submitted`` (recorded in the state file, or the server's
duplicate check names a clip of this same wallet) are successes; ``duplicate`` (the
same bytes are another wallet's live clip), ``invalid`` and ``failed`` are not. With
``--wait`` each clip's ingest verdict replaces ``submitted``: ``queued`` (or
``scoring``/``accepted``/``withdrawn``) succeed, ``rejected``, ``failed`` and
``pending`` (still being probed when ``--wait-timeout`` ran out) do not.

Exit status: 0 when every clip succeeded, 1 when any did not (or signing in failed),
2 for a usage error (bad option, no key, a key on the command line), 130 when
interrupted (Ctrl-C): what was done is saved and the next run continues from there.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import click
from eth_account.signers.local import LocalAccount
from pydantic import ValidationError

from shotbank.cli.credentials import resolve_account
from shotbank.cli.errors import CliError
from shotbank.cli.output import Outcome, Reporter, Result
from shotbank.cli.scan import PreparedClip, file_sha256, prepare_clip, scan_directory
from shotbank.cli.state import STATE_FILE_NAME, ContributeState, Submission, lock_state, target_key
from shotbank.client import (
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    ApiError,
    ClientError,
    ClientSettings,
    Clip,
    ClipStatus,
    KeyLoadError,
    ShotbankClient,
    UploadRef,
)

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "ByteSize", "contribute", "idempotency_key"]

EXIT_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report it
_IDEMPOTENCY_PREFIX: Final = "shotbank-contribute-1-"

_WAIT_RESULTS: Final = {
    ClipStatus.RECEIVED: Result.PENDING,
    ClipStatus.PROBING: Result.PENDING,
    ClipStatus.QUEUED: Result.QUEUED,
    ClipStatus.SCORING: Result.SCORING,
    ClipStatus.ACCEPTED: Result.ACCEPTED,
    ClipStatus.REJECTED: Result.REJECTED,
    ClipStatus.FAILED: Result.FAILED,
    ClipStatus.WITHDRAWN: Result.WITHDRAWN,
}


def idempotency_key(sha256: str, content_key: str, upload_id: str) -> str:
    """The ``Idempotency-Key`` of one submission: the same inputs always give the same key.

    The upload id is part of it because it is part of the request body: a new upload of
    the same file (the old one expired) is a new request, not a reuse of the key.
    """
    digest = hashlib.sha256(f"{sha256}:{content_key}:{upload_id}".encode()).hexdigest()
    return _IDEMPOTENCY_PREFIX + digest


class ByteSize(click.ParamType[int, "str | int"]):
    """A size in bytes: ``1048576``, ``512KiB``, ``8MiB``, ``1GiB`` (``K``/``M``/``G`` too)."""

    name = "size"
    _UNITS: Final = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    _PATTERN: Final = re.compile(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*", re.IGNORECASE)

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(
        self, value: str | int, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            size = value
        else:
            match = self._PATTERN.fullmatch(str(value))
            if match is None:
                self.fail(f"{value!r} is not a size such as 8MiB or 262144", param, ctx)
            size = int(match.group(1)) * self._UNITS[match.group(2).lower()]
        if not self.minimum <= size <= self.maximum:
            self.fail(f"must be between {self.minimum} and {self.maximum} bytes", param, ctx)
        return size


@dataclass
class _Item:
    """One valid clip on its way through this run."""

    clip: PreparedClip
    sha256: str = ""
    outcome: Outcome | None = None
    remote: Clip | None = None


def _unreadable(item: _Item, exc: OSError) -> Outcome:
    reason = exc.strerror or str(exc)
    return Outcome(item.clip.files.relative, Result.FAILED, detail=f"cannot read it: {reason}")


def _status_detail(clip: Clip) -> str:
    detail = f"status {clip.status}"
    if clip.reasons:
        detail += ": " + "; ".join(f"{r.code}: {r.message}" for r in clip.reasons)
    return detail


class Contributor:
    """Hashes, uploads and submits the valid clips of one run, recording every step."""

    def __init__(
        self,
        *,
        client: ShotbankClient,
        state: ContributeState,
        target: str,
        reporter: Reporter,
        chunk_size: int,
        sign_in_again: Callable[[], None],
    ) -> None:
        self.client = client
        self.state = state
        self.target = target
        self.reporter = reporter
        self.chunk_size = chunk_size
        self._sign_in_again = sign_in_again

    # --- hashing -------------------------------------------------------------------------

    def hash_all(self, items: list[_Item]) -> None:
        """Fill in each item's SHA-256, from the state when the file is unchanged."""
        todo: list[tuple[_Item, int, int]] = []
        for item in items:
            try:
                stat = item.clip.files.media.stat()
            except OSError as exc:
                item.outcome = _unreadable(item, exc)
                continue
            cached = self.state.cached_sha256(
                item.clip.files.relative, size=stat.st_size, mtime_ns=stat.st_mtime_ns
            )
            if cached is not None:
                item.sha256 = cached
            else:
                todo.append((item, stat.st_size, stat.st_mtime_ns))
        if not todo:
            return
        with self.reporter.transfer("hashing", sum(size for _, size, _ in todo)):
            for item, size, mtime_ns in todo:
                try:
                    item.sha256 = file_sha256(item.clip.files.media, on_bytes=self.reporter.advance)
                except OSError as exc:
                    item.outcome = _unreadable(item, exc)
                    continue
                self.state.remember_sha256(
                    item.clip.files.relative, size=size, mtime_ns=mtime_ns, sha256=item.sha256
                )
        self.state.save()

    # --- submitting ----------------------------------------------------------------------

    def bytes_to_send(self, item: _Item) -> int:
        """What this run will upload for ``item`` (an estimate for the overall bar)."""
        submission = self.state.submission(self.target, item.clip.files.relative)
        if (
            submission is not None
            and submission.sha256 == item.sha256
            and (submission.clip_id is not None or submission.upload_complete)
        ):
            return 0
        return item.clip.size

    def process(self, item: _Item) -> Outcome:
        """Take one clip as far as it goes; never raises for a failure of this clip."""
        relative = item.clip.files.relative
        for attempt in (1, 2):
            try:
                if attempt == 2:
                    self._sign_in_again()
                return self._process(item)
            except ApiError as exc:
                if exc.status == 401 and attempt == 1:  # the session expired mid-run
                    continue
                return Outcome(relative, Result.FAILED, detail=f"{exc.code}: {exc.message}")
            except ClientError as exc:
                return Outcome(relative, Result.FAILED, detail=str(exc))
            except OSError as exc:
                return _unreadable(item, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(self, relative: str, submission: Submission) -> None:
        self.state.record(self.target, relative, submission)
        self.state.save()

    def _process(self, item: _Item) -> Outcome:
        clip = item.clip
        relative = clip.files.relative
        assert clip.content_key is not None
        assert clip.annotation is not None
        submission = self.state.submission(self.target, relative)
        if submission is not None and submission.sha256 != item.sha256:
            self._abandon(submission)  # the file changed since
            submission = None
        if submission is not None and submission.clip_id is not None:
            outcome = self._already_submitted(item, submission)
            if outcome is not None:
                return outcome
            submission = None  # the server does not know that clip (a reset server)
        if submission is None:
            submission = Submission(sha256=item.sha256, content_key=clip.content_key)
        elif submission.content_key != clip.content_key:
            submission = submission.model_copy(update={"content_key": clip.content_key})
        for attempt in (1, 2):
            if not submission.upload_complete:
                submission = self._upload(item, submission)
            assert submission.upload_id is not None
            key = idempotency_key(item.sha256, clip.content_key, submission.upload_id)
            try:
                created = self.client.create_clip(
                    submission.upload_id,
                    clip.annotation,
                    camera_path_text=clip.camera_path_text,
                    idempotency_key=key,
                )
            except ApiError as exc:
                if exc.code in ("upload_not_found", "upload_expired") and attempt == 1:
                    submission = Submission(sha256=item.sha256, content_key=clip.content_key)
                    continue  # the finished upload is gone: upload again, once
                if exc.code == "upload_incomplete" and attempt == 1:
                    submission = submission.model_copy(update={"upload_complete": False})
                    continue  # the record was wrong: resume from the server's offset
                return self._refused(item, submission, exc)
            break
        item.remote = created
        self._record(
            relative,
            submission.model_copy(
                update={
                    "idempotency_key": key,
                    "clip_id": created.id,
                    "submitted_at": datetime.now(UTC),
                }
            ),
        )
        return Outcome(relative, Result.SUBMITTED, created.id, _status_detail(created))

    def _upload(self, item: _Item, submission: Submission) -> Submission:
        relative = item.clip.files.relative
        current = submission

        def created(ref: UploadRef) -> None:
            nonlocal current
            current = current.model_copy(
                update={"upload_url": ref.url, "upload_id": ref.upload_id, "upload_complete": False}
            )
            self._record(relative, current)

        self.reporter.start_file(relative, item.clip.size)
        try:
            ref = self.client.upload(
                item.clip.files.media,
                chunk_size=self.chunk_size,
                resume_url=submission.upload_url,
                on_progress=lambda done, _total: self.reporter.file_progress(done),
                on_created=created,
            )
        finally:
            self.reporter.finish_file()
        current = current.model_copy(
            update={"upload_url": ref.url, "upload_id": ref.upload_id, "upload_complete": True}
        )
        self._record(relative, current)
        return current

    def _abandon(self, submission: Submission) -> None:
        """Terminate an unfinished upload of bytes that are no longer the file's."""
        if submission.upload_id and not submission.upload_complete and not submission.clip_id:
            with contextlib.suppress(ClientError):  # else it expires on its own
                self.client.delete_upload(submission.upload_id)

    def _already_submitted(self, item: _Item, submission: Submission) -> Outcome | None:
        assert submission.clip_id is not None
        try:
            remote = self.client.get_clip(submission.clip_id)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        item.remote = remote
        detail = _status_detail(remote)
        if submission.content_key != item.clip.content_key:
            detail += "; the annotation changed since it was submitted and was not sent again"
        return Outcome(item.clip.files.relative, Result.ALREADY_SUBMITTED, remote.id, detail)

    def _refused(self, item: _Item, submission: Submission, exc: ApiError) -> Outcome:
        relative = item.clip.files.relative
        if exc.code in ("clip_duplicate", "upload_already_used"):
            existing = exc.extra.get("existing_clip_id") or exc.extra.get("clip_id")
            if isinstance(existing, str):
                mine = self._own_clip(existing)
                if mine is not None:
                    item.remote = mine
                    self._record(relative, submission.model_copy(update={"clip_id": mine.id}))
                    return Outcome(
                        relative,
                        Result.ALREADY_SUBMITTED,
                        mine.id,
                        f"same bytes as your clip {mine.id}; {_status_detail(mine)}",
                    )
                if exc.code == "clip_duplicate":
                    return Outcome(relative, Result.DUPLICATE, detail=f"duplicate of {existing}")
        if exc.code in ("validation_error", "camera_path_invalid"):
            problems = [
                f"{'.'.join(map(str, d.get('loc', ())))}: {d.get('msg')}" for d in exc.details
            ]
            return Outcome(relative, Result.INVALID, detail="; ".join([exc.message, *problems]))
        return Outcome(relative, Result.FAILED, detail=f"{exc.code}: {exc.message}")

    def _own_clip(self, clip_id: str) -> Clip | None:
        try:
            clip = self.client.get_clip(clip_id)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return clip if clip.is_owner_view else None

    # --- waiting -------------------------------------------------------------------------

    def wait(self, items: list[_Item], *, timeout_s: float) -> None:
        """Poll every pending clip until ingest decided or ``timeout_s`` passed in all."""
        deadline = time.monotonic() + timeout_s
        followed = [i for i in items if i.remote is not None and i.outcome is not None]
        waiting = sum(1 for i in followed if i.remote is not None and i.remote.is_pending)
        if waiting:
            self.reporter.line(f"waiting for ingest to check {waiting} clip(s)...")
        for item in followed:
            assert item.remote is not None
            assert item.outcome is not None
            if item.remote.is_pending:
                try:
                    item.remote = self.client.wait_for_clip(
                        item.remote.id, timeout_s=max(deadline - time.monotonic(), 0.0)
                    )
                except ClientError as exc:
                    item.outcome.result = Result.FAILED
                    item.outcome.detail = f"could not follow the clip: {exc}"
                    continue
            self._apply_verdict(item.outcome, item.remote, timeout_s=timeout_s)
            self.reporter.outcome(item.outcome)

    @staticmethod
    def _apply_verdict(outcome: Outcome, remote: Clip, *, timeout_s: float) -> None:
        before = outcome.result
        try:
            outcome.result = _WAIT_RESULTS[ClipStatus(remote.status)]
        except ValueError:  # a status newer than this SDK
            outcome.result = Result.PENDING
        detail = _status_detail(remote)
        if outcome.result is Result.PENDING:
            detail = f"still {remote.status} after {timeout_s:g} s"
        if before is Result.ALREADY_SUBMITTED:
            detail = f"already submitted; {detail}"
        outcome.detail = detail


@click.command("contribute")
@click.argument(
    "directory",
    type=click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path),
)
@click.option(
    "--api",
    "api_url",
    metavar="URL",
    help="Backend URL [default: $SHOTBANK_API_URL, else http://127.0.0.1:8000].",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Wallet key: a file with the hex key or an encrypted JSON keystore "
    "[default: $SHOTBANK_KEY_FILE; or set SHOTBANK_PRIVATE_KEY].",
)
@click.option("-r", "--recursive", is_flag=True, help="Also look in subdirectories.")
@click.option("--dry-run", is_flag=True, help="Only check the clips; upload nothing.")
@click.option(
    "--wait/--no-wait",
    default=False,
    show_default=True,
    help="Wait until ingest has checked each clip, and show its verdict.",
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0, max=86_400),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="How long --wait waits in all.",
)
@click.option(
    "--chunk-size",
    type=ByteSize(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE),
    default="8MiB",
    show_default=True,
    help="Bytes per upload request (e.g. 256KiB, 8MiB).",
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Where progress is kept between runs [default: DIR/{STATE_FILE_NAME}].",
)
@click.pass_context
def contribute(
    ctx: click.Context,
    directory: Path,
    api_url: str | None,
    key_file: Path | None,
    recursive: bool,
    dry_run: bool,
    wait: bool,
    wait_timeout: float,
    chunk_size: int,
    state_file: Path | None,
) -> None:
    """Upload every clip in DIRECTORY with its annotation (clip.mp4 + clip.json).

    Clips are .mp4 .mov .m4v .mkv .webm files; each needs <name>.json (annotation schema
    v1) beside it and may have <name>.camera.txt (a camera path, one pose per line).
    Progress is saved in a state file, so a rerun skips what was submitted and resumes
    a partial upload. Exit status: 0 all submitted, 1 any failed, 2 usage error,
    130 interrupted.
    """
    try:
        settings = ClientSettings() if api_url is None else ClientSettings(api_url=api_url)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise click.UsageError(f"invalid setting: {problems}", ctx) from None
    reporter = Reporter()
    found = scan_directory(directory, recursive=recursive)
    if not found:
        hint = "" if recursive else " (--recursive looks in subdirectories)"
        reporter.line(f"no clips found in {directory}{hint}")
        return
    outcomes: list[Outcome] = []
    items: list[_Item] = []
    for files in found:
        prepared = prepare_clip(files)
        if prepared.valid:
            items.append(_Item(prepared))
            continue
        outcome = Outcome(files.relative, Result.INVALID, detail="; ".join(prepared.issues))
        outcomes.append(outcome)
        reporter.outcome(Outcome(files.relative, Result.INVALID))
        for issue in prepared.issues:
            reporter.line(f"{'':>17}   {issue}", style="red")
    if dry_run:
        for item in items:
            item.outcome = Outcome(
                item.clip.files.relative, Result.READY, detail=f"{item.clip.size} bytes"
            )
            outcomes.append(item.outcome)
        _finish(ctx, reporter, outcomes, title="shotbank contribute --dry-run")
        return
    if not items:
        _finish(ctx, reporter, outcomes, title="shotbank contribute")
        return
    try:
        account = resolve_account(key_file, settings, interactive=sys.stdin.isatty())
    except KeyLoadError as exc:
        raise click.ClickException(str(exc)) from None
    state_path = state_file or directory / STATE_FILE_NAME
    try:
        with lock_state(state_path):
            state = ContributeState.load(state_path)
            if state.set_aside is not None:
                click.echo(
                    f"warning: the state file was corrupt; moved it to {state.set_aside} "
                    "and rebuilt what it held from the server",
                    err=True,
                )
            with ShotbankClient.from_settings(settings) as client:
                code = _run(
                    client,
                    account,
                    state,
                    reporter,
                    items,
                    outcomes,
                    settings,
                    chunk_size=chunk_size,
                    wait=wait,
                    wait_timeout=wait_timeout,
                )
    except CliError as exc:
        raise click.ClickException(str(exc)) from None
    _finish(ctx, reporter, outcomes, title="shotbank contribute", code=code)


def _run(
    client: ShotbankClient,
    account: LocalAccount,
    state: ContributeState,
    reporter: Reporter,
    items: list[_Item],
    outcomes: list[Outcome],
    settings: ClientSettings,
    *,
    chunk_size: int,
    wait: bool,
    wait_timeout: float,
) -> int | None:
    """Hash, sign in, submit (and wait); ``130`` when interrupted, else ``None``."""

    def sign_in() -> None:
        client.sign_in(account)

    try:
        try:
            sign_in()
        except ClientError as exc:
            raise click.ClickException(f"cannot sign in at {settings.api_url}: {exc}") from None
        contributor = Contributor(
            client=client,
            state=state,
            target=target_key(settings.api_url, account.address),
            reporter=reporter,
            chunk_size=chunk_size,
            sign_in_again=sign_in,
        )
        reporter.line(f"signed in as {account.address} at {settings.api_url}")
        contributor.hash_all(items)
        ready = [item for item in items if item.outcome is None]
        total = sum(contributor.bytes_to_send(item) for item in ready)
        with reporter.transfer("uploading", total):
            for item in items:
                if item.outcome is not None:  # could not be hashed
                    reporter.outcome(item.outcome)
                    continue
                item.outcome = Outcome(
                    item.clip.files.relative, Result.INTERRUPTED, detail="the next run continues"
                )
                item.outcome = contributor.process(item)
                reporter.outcome(item.outcome)
        if wait:
            contributor.wait(items, timeout_s=wait_timeout)
    except KeyboardInterrupt:
        # The hashes computed so far; if that fails the last good state stays.
        with contextlib.suppress(CliError):
            state.save()
        for item in items:
            if item.outcome is None:
                item.outcome = Outcome(item.clip.files.relative, Result.NOT_STARTED)
        reporter.line("interrupted: progress is saved; run the same command again to continue")
        return EXIT_INTERRUPTED
    finally:
        outcomes.extend(item.outcome for item in items if item.outcome is not None)
        with contextlib.suppress(ClientError):  # else the session expires on its own
            client.logout()
    return None


def _finish(
    ctx: click.Context,
    reporter: Reporter,
    outcomes: list[Outcome],
    *,
    title: str,
    code: int | None = None,
) -> None:
    outcomes.sort(key=lambda outcome: outcome.relative)
    reporter.table(outcomes, title=title)
    if code is None:
        code = 0 if all(outcome.ok for outcome in outcomes) else EXIT_FAILED
    ctx.exit(code)
