"""The ``shotbank`` command line.

- ``shotbank contribute DIR`` -- bulk upload of clips with their annotations
  (:mod:`~shotbank.cli.contribute`)
- ``shotbank validator run`` -- a validator node: lease, score, sign and report clips
  (:mod:`~shotbank.cli.validator`; the node itself needs the scoring extra)
- ``shotbank finetune`` -- fine-tune the scoring model on a downloaded dataset version
  (:mod:`~shotbank.cli.finetune`; the training needs the scoring extra)
- ``shotbank rewards show|claim`` -- what a wallet earned, and claiming it on chain
  (:mod:`~shotbank.cli.rewards`)
- ``shotbank datasets list|buy|licences|download`` -- dataset versions, licences bought
  on chain, verified downloads (:mod:`~shotbank.cli.datasets`)

Modules: :mod:`~shotbank.cli.scan` (finding and checking clips),
:mod:`~shotbank.cli.state` (what is remembered between runs),
:mod:`~shotbank.cli.credentials` (which wallet signs in),
:mod:`~shotbank.cli.output` (lines, bars, the summary table),
:mod:`~shotbank.cli.errors` (the exception tree).
"""

from __future__ import annotations

import click

from shotbank import __version__
from shotbank.cli.contribute import contribute
from shotbank.cli.credentials import KEY_ARGUMENT_REFUSAL, argument_holds_a_key
from shotbank.cli.datasets import datasets
from shotbank.cli.finetune import finetune
from shotbank.cli.rewards import rewards
from shotbank.cli.validator import validator

__all__ = ["main"]


class _ShotbankGroup(click.Group):
    """The top-level group; refuses a command line holding something shaped like a key."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if argument_holds_a_key(args):
            raise click.UsageError(KEY_ARGUMENT_REFUSAL, ctx)
        return super().parse_args(ctx, args)


@click.group(cls=_ShotbankGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shotbank")
def main() -> None:
    """Shotbank: contribute annotated video clips for training video models."""


main.add_command(contribute)
main.add_command(validator)
main.add_command(rewards)
main.add_command(finetune)
main.add_command(datasets)
