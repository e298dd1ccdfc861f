"""Exceptions of the rewards package.

::

    ShotbankError
    └── RewardsError        epoch inputs that are well-formed but inconsistent

Malformed values (an address that is not one, an amount that is not a non-negative
``uint256``, a basis-point figure out of range, a list over its limit) are refused by the
pydantic models with a ``ValidationError`` like any other boundary. What only the inputs
as a whole can show (``funded_total`` below what earlier epochs allocated, a clip id or
an address given twice, more agreed reports than reports, more accounts than a rewards
tree holds; under rule /2 sales above the pool or not matching ``versions``) raises
:class:`RewardsError`, from the model's validation and again from
:func:`shotbank.rewards.allocate`.

:class:`RewardsError` deliberately does not inherit from ``ValueError``: pydantic turns
a ``ValueError`` raised inside a validator into a ``ValidationError``, and the doc
promises a ``RewardsError`` for these cases however the inputs are built.
"""

from __future__ import annotations

from shotbank.errors import ShotbankError

__all__ = ["RewardsError"]


class RewardsError(ShotbankError):
    """Epoch inputs are inconsistent, so no allocation can be computed from them."""
