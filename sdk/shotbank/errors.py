"""Root of the SDK's exception tree.

Every exception the SDK raises on purpose derives from :class:`ShotbankError`, so a
caller can catch the whole SDK with one ``except``. Each sub-package draws its own
branch in its ``errors`` module (the chain layer's is :mod:`shotbank.chain.errors`, the
API client's :mod:`shotbank.client.errors`, the command line's :mod:`shotbank.cli.errors`,
the reward allocation rule's :mod:`shotbank.rewards.errors`; datasets draw theirs in
:mod:`shotbank.datasets.client` and :mod:`shotbank.datasets.market`).
"""

__all__ = ["ShotbankError"]


class ShotbankError(Exception):
    """Base class of every error raised by the Shotbank SDK."""
