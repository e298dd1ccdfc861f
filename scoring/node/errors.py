"""The validator node's exceptions: a branch of the scoring package's tree.

::

    ScoringError                             (scoring/errors.py)
    └── NodeError
        ├── NodeConfigError      (+ ValueError)       settings or config file unusable
        ├── NodeStateError       (+ OSError)          state dir unusable (locked, unwritable)
        ├── NotStakedError                            no active stake: the node refuses to run
        ├── BackendMismatchError                      the backend wants another report version
        ├── FetchError           (+ ConnectionError)  a clip's bytes could not be fetched
        └── ContentMismatchError (+ ValueError)       the bytes are not the leased content (CID,
                                                      SHA-256, size): discarded, never scored

Model problems (tampered or unknown weights, no such device) are the
:class:`scoring.errors.ModelError` family; HTTP problems with the backend are the SDK's
:class:`shotbank.client.ClientError` family.
"""

from __future__ import annotations

from typing import ClassVar

from scoring.errors import ScoringError

__all__ = [
    "BackendMismatchError",
    "ContentMismatchError",
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
