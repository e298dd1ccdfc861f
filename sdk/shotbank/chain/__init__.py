"""Shotbank's chain layer: everything validators and trainers need without the server.

- :mod:`~shotbank.chain.abi` -- ABIs and bytecode shipped with the package
- :mod:`~shotbank.chain.contracts` -- typed wrappers of the four contracts
- :mod:`~shotbank.chain.deployments` -- where the contracts live, per chain
- :mod:`~shotbank.chain.deploy` -- deploying and wiring them
- :mod:`~shotbank.chain.eip712` -- epoch-root and score-report typed data, signing and verification
- :mod:`~shotbank.chain.siwe` -- Sign-In with Ethereum messages
- :mod:`~shotbank.chain.merkle` -- OpenZeppelin-compatible StandardMerkleTree
- :mod:`~shotbank.chain.rpc` -- node connections with read retries
- :mod:`~shotbank.chain.outbox` -- crash-safe transaction sending
- :mod:`~shotbank.chain.indexer` -- reorg-aware event indexing
- :mod:`~shotbank.chain.devnode` -- a local anvil for development and tests
- :mod:`~shotbank.chain.errors` -- the exception tree

Import what you need from the submodules; this package re-exports the common names.
"""

from shotbank.chain.abi import CONTRACT_NAMES, load_abi, load_artifact
from shotbank.chain.contracts import (
    ContractCall,
    DatasetMarket,
    RewardDistributor,
    ShotToken,
    ValidatorRegistry,
    send_call,
)
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import (
    Deployment,
    get_deployment,
    load_deployments,
    save_deployment,
)
from shotbank.chain.eip712 import (
    EpochRoot,
    EpochRootSignature,
    ScoreReport,
    bundle_signatures,
    recover_epoch_root_signer,
    recover_score_report_signer,
    sign_epoch_root,
    sign_score_report,
)
from shotbank.chain.errors import ChainError
from shotbank.chain.indexer import EventBatch, EventHandler, Indexer, LogSource, SqliteIndexerStore
from shotbank.chain.merkle import StandardMerkleTree, rewards_tree
from shotbank.chain.outbox import Outbox, OutboxPolicy, SqliteOutboxStore, TxIntent, TxStatus
from shotbank.chain.rpc import RetryPolicy, connect
from shotbank.chain.siwe import build_siwe_message, new_nonce, verify_siwe_message

__all__ = [
    "CONTRACT_NAMES",
    "ChainError",
    "ContractCall",
    "DatasetMarket",
    "DeployParams",
    "Deployment",
    "EpochRoot",
    "EpochRootSignature",
    "EventBatch",
    "EventHandler",
    "Indexer",
    "LogSource",
    "Outbox",
    "OutboxPolicy",
    "RetryPolicy",
    "RewardDistributor",
    "ScoreReport",
    "ShotToken",
    "SqliteIndexerStore",
    "SqliteOutboxStore",
    "StandardMerkleTree",
    "TxIntent",
    "TxStatus",
    "ValidatorRegistry",
    "build_siwe_message",
    "bundle_signatures",
    "connect",
    "deploy_all",
    "get_deployment",
    "load_abi",
    "load_artifact",
    "load_deployments",
    "new_nonce",
    "recover_epoch_root_signer",
    "recover_score_report_signer",
    "rewards_tree",
    "save_deployment",
    "send_call",
    "sign_epoch_root",
    "sign_score_report",
    "verify_siwe_message",
]
