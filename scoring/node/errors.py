"""The validator node's exceptions: a branch of the scoring package's tree.

::

    ScoringError                             (scoring/errors.py)
    └── NodeError
        ├── NodeConfigError      (+ ValueError)       settings or config file unusable
        ├── NodeStateError       (+ OSError)          state dir unusable (locked, unwritable)
        ├── NotStakedError                            no active stake: the node refuses to run
        ├── BackendMismatchError                      the backend wants another report version
        ├── FetchError           (+ ConnectionError)  a clip's bytes could not be fetched
        ├── ContentMismatchError (+ ValueError)       the bytes are not the leased content (CID,
        │                                             SHA-256, size): discarded, never scored
        ├── EpochRefusedError    (+ ValueError)       a published epoch does not check out
        │                                             (funding, previous cumulative, root):
        │                                             never signed
        └── ConflictingRootError                      the signing record holds another root for
                                                      that epoch: signing would be slashable

Model problems (tampered or unknown weights, no such device) are the
:class:`scoring.errors.ModelError` family; HTTP problems with the backend are the SDK's
:class:`shotbank.client.ClientError` family.
"""

from __future__ import annotations

from typing import ClassVar

from scoring.errors import ScoringError

__all__ = [
    "BackendMismatchError",
    "ConflictingRootError",
    "ContentMismatchError",
    "EpochRefusedError",
    "FetchError",
    "NodeConfigError",
    "NodeError",
    "NodeStateError",
    "NotStakedError",
]


class NodeError(ScoringError):
    """Base of the validator node's own errors."""

    code: ClassVar[str] = "scoring.node"


class NodeConfigError(NodeError, ValueError):
    """The node's settings or its config file cannot be used."""

    code: ClassVar[str] = "scoring.node.config"


class NodeStateError(NodeError, OSError):
    """The state directory cannot be used (another node holds it, or it is unwritable)."""

    code: ClassVar[str] = "scoring.node.state"


class NotStakedError(NodeError):
    """The signing key has no active stake in the ValidatorRegistry: nothing is leased."""

    code: ClassVar[str] = "scoring.node.not_staked"


class BackendMismatchError(NodeError):
    """The backend's validator config does not fit this node (report version, chain)."""

    code: ClassVar[str] = "scoring.node.backend_mismatch"


class FetchError(NodeError, ConnectionError):
    """A clip's bytes could not be fetched (connection, timeout, server error)."""

    code: ClassVar[str] = "scoring.node.fetch"


class ContentMismatchError(NodeError, ValueError):
    """The fetched bytes are not the leased content: wrong CID, SHA-256 or size."""

    code: ClassVar[str] = "scoring.node.content_mismatch"


class EpochRefusedError(NodeError, ValueError):
    """A closed epoch's published data does not check out; the node does not sign its root.

    ``reason`` is a short stable word (``funded_total``, ``previous_cumulative``, ``root``...)
    used as the label of the refusal metric.
    """

    code: ClassVar[str] = "scoring.node.epoch_refused"

    def __init__(self, epoch: int, reason: str, message: str) -> None:
        super().__init__(f"epoch {epoch}: {message}")
        self.epoch = epoch
        self.reason = reason


class ConflictingRootError(NodeError):
    """The signing record already holds a different root or total for this epoch.

    Two signatures over different roots for one epoch are slashable by anyone through
    ``RewardDistributor.challenge``; the node refuses to produce the second one.
    """

    code: ClassVar[str] = "scoring.node.conflicting_root"
