"""Which wallet the CLI signs in with: a key file or an environment variable, never an argument.

Order: ``--key-file``; else ``SHOTBANK_KEY_FILE`` or ``SHOTBANK_PRIVATE_KEY`` (setting both
is ambiguous and refused). A keystore's password comes from ``SHOTBANK_KEY_PASSWORD`` or,
on a terminal, from a prompt that does not echo. A command line that holds something
shaped like a private key is refused before anything else happens: command lines end up
in shell history and in every user's ``ps``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click
from eth_account.signers.local import LocalAccount
from pydantic import ValidationError

from shotbank.client.errors import KeyLoadError
from shotbank.client.keys import (
    account_from_hex,
    account_from_key_file,
    key_file_is_shared,
    looks_like_private_key,
)
from shotbank.client.settings import ClientSettings

__all__ = [
    "API_OPTION",
    "JSON_OPTION",
    "KEY_ARGUMENT_REFUSAL",
    "KEY_OPTION",
    "argument_holds_a_key",
    "command_account",
    "command_settings",
    "resolve_account",
]

KEY_ARGUMENT_REFUSAL = (
    "an argument looks like a private key; keys are never taken on the command line "
    "(shell history, process lists). Put it in a key file (chmod 600) and pass "
    "--key-file PATH, or set SHOTBANK_KEY_FILE or SHOTBANK_PRIVATE_KEY. If that was a "
    "real key, consider it exposed."
)


def argument_holds_a_key(args: Sequence[str]) -> bool:
    """Whether any argument (or the value of an ``--option=value``) looks like a key."""
    for arg in args:
        if looks_like_private_key(arg) or looks_like_private_key(arg.partition("=")[2]):
            return True
    return False


def resolve_account(
    key_file: Path | None, settings: ClientSettings, *, interactive: bool
) -> LocalAccount:
    """The account to sign in with; :class:`click.UsageError` when none is configured.

    Raises :class:`~shotbank.client.KeyLoadError` when the key cannot be loaded.
    """
    if key_file is None:
        if settings.key_file is not None and settings.private_key is not None:
            raise click.UsageError(
                "both SHOTBANK_KEY_FILE and SHOTBANK_PRIVATE_KEY are set: unset one"
            )
        key_file = settings.key_file
    if key_file is not None:
        if key_file.is_file() and key_file_is_shared(key_file):
            click.echo(
                f"warning: the key file {key_file} can be read by other users; "
                f"run: chmod 600 {key_file}",
                err=True,
            )

        def ask() -> str:
            answer: str = click.prompt(
                f"Password of the keystore {key_file}", hide_input=True, err=True
            )
            return answer

        return account_from_key_file(
            key_file,
            password=settings.key_password,
            prompt_password=ask if interactive else None,
        )
    if settings.private_key is not None:
        return account_from_hex(settings.private_key, source="SHOTBANK_PRIVATE_KEY")
    raise click.UsageError(
        "no wallet key: pass --key-file PATH, or set SHOTBANK_KEY_FILE or SHOTBANK_PRIVATE_KEY"
    )


def command_settings(ctx: click.Context, **overrides: str | None) -> ClientSettings:
    """The client settings of a command: the environment's, with the options given
    (``None`` means not given); an invalid value is a usage error naming the setting."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return ClientSettings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise click.UsageError(f"invalid setting: {problems}", ctx) from None


def command_account(
    ctx: click.Context, key_file: Path | None, settings: ClientSettings
) -> LocalAccount:
    """The wallet of a command (:func:`resolve_account`, asking only on a terminal); a key
    that cannot be loaded is a usage error."""
    try:
        return resolve_account(key_file, settings, interactive=sys.stdin.isatty())
    except KeyLoadError as exc:
        raise click.UsageError(str(exc), ctx) from None


#: ``--api URL``: the backend (``api_url``), shared by the commands that call it.
API_OPTION = click.option(
    "--api",
    "api_url",
    metavar="URL",
    help="Backend URL [default: $SHOTBANK_API_URL, else http://127.0.0.1:8000].",
)
#: ``--key-file PATH``: the wallet key (``key_file``).
KEY_OPTION = click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Wallet key: a file with the hex key or an encrypted JSON keystore "
    "[default: $SHOTBANK_KEY_FILE; or set SHOTBANK_PRIVATE_KEY].",
)
#: ``--json``: machine-readable output (``as_json``).
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
