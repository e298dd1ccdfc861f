"""Exceptions of the chain layer, as one tree.

Subclasses that mean "bad value" or "cannot connect" also inherit from the matching
built-in exception (as web3.py's ``Web3ValueError(Web3Exception, ValueError)`` does), so
code that only knows the standard library still catches them sensibly.

::

    ShotbankError
    └── ChainError
        ├── ChainConfigError (+ValueError)          bad or missing configuration
        │   ├── ArtifactNotFoundError (+LookupError)   no ABI/bytecode shipped for a name
        │   ├── DeploymentsFileError                  unreadable/invalid deployments file
        │   ├── DeploymentNotFoundError (+LookupError) no deployment for a chain id
        │   └── ChainIdMismatchError                  node's chain id is not the expected one
        ├── RpcError                                 talking to the node failed
        │   └── NodeUnavailableError (+ConnectionError)  node down / unreachable after retries
        ├── SignatureError (+ValueError)              malformed or wrong signature
        ├── SiweError (+ValueError)                   SIWE message rejected (has a ``code``)
        ├── MerkleError (+ValueError)                 invalid tree, value or proof
        ├── TransactionError                          outgoing transactions
        │   ├── TransactionRevertedError               would revert, or mined with status 0
        │   ├── OutboxError                            outbox state does not allow the action
        │   └── TransactionTimeoutError (+TimeoutError)  not final within the wait time
        └── IndexerError                              event indexer
            └── ReorgTooDeepError                      reorg deeper than the stored window
"""

from __future__ import annotations

from shotbank.errors import ShotbankError

__all__ = [
    "ArtifactNotFoundError",
    "ChainConfigError",
    "ChainError",
    "ChainIdMismatchError",
    "DeploymentNotFoundError",
    "DeploymentsFileError",
    "IndexerError",
    "MerkleError",
    "NodeUnavailableError",
    "OutboxError",
    "ReorgTooDeepError",
    "RpcError",
    "SignatureError",
    "SiweError",
    "TransactionError",
    "TransactionRevertedError",
    "TransactionTimeoutError",
]


class ChainError(ShotbankError):
    """Base class of every error raised by :mod:`shotbank.chain`."""


class ChainConfigError(ChainError, ValueError):
    """The chain layer is configured wrongly (artifacts, deployments, chain id)."""


class ArtifactNotFoundError(ChainConfigError, LookupError):
    """No contract artifact (ABI + bytecode) is shipped under the requested name."""


class DeploymentsFileError(ChainConfigError):
    """The deployments file cannot be read, parsed or validated."""


class DeploymentNotFoundError(ChainConfigError, LookupError):
    """The deployments file has no entry for the requested chain id."""


class ChainIdMismatchError(ChainConfigError):
    """The node reports a different chain id than the one the caller expects."""


class RpcError(ChainError):
    """A JSON-RPC exchange with the node failed."""


class NodeUnavailableError(RpcError, ConnectionError):
    """The node could not be reached (refused, timed out, 5xx) after the allowed retries.

    For a state-changing call (``eth_sendRawTransaction``) this means the outcome is
    unknown: the node may or may not have received the transaction. The outbox keeps
    the signed transaction and reconciles it later; nothing is lost.
    """

    def __init__(self, message: str, *, method: str, endpoint: str) -> None:
        super().__init__(message)
        self.method = method
        self.endpoint = endpoint


class SignatureError(ChainError, ValueError):
    """A signature is malformed (length, high-s, bad v) or does not match."""


class SiweError(ChainError, ValueError):
    """A Sign-In with Ethereum message was rejected.

    ``code`` is stable and machine-readable (``"expired"``, ``"nonce_mismatch"``,
    ``"invalid_signature"``...); the message is a human sentence.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MerkleError(ChainError, ValueError):
    """A Merkle tree, value or proof is invalid."""


class TransactionError(ChainError):
    """An outgoing transaction could not be built, sent or confirmed."""


class TransactionRevertedError(TransactionError):
    """The transaction reverts (at estimation) or was mined with status 0."""


class OutboxError(TransactionError):
    """The outbox's stored state does not allow the requested action."""


class TransactionTimeoutError(TransactionError, TimeoutError):
    """A transaction did not reach a final state within the allowed time."""


class IndexerError(ChainError):
    """The event indexer cannot continue."""


class ReorgTooDeepError(IndexerError):
    """A reorg reaches below the oldest block hash the indexer keeps.

    The indexer cannot find a common ancestor on its own; an operator must decide
    (re-index from the deployment's start block, or raise the window).
    """
