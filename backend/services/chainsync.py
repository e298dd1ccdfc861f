"""The background job that keeps the validator stake snapshot in step with the chain.

:class:`ChainSync` is a loop job (``BackgroundRunner.add_loop``): each :meth:`ChainSync.step`
finds the ValidatorRegistry of ``settings.chain_id`` in the deployments file, sets up (or
reuses) a ``shotbank.chain.indexer.Indexer`` over its stake events with
``SHOTBANK_CHAIN_CONFIRMATIONS`` confirmations, and runs one indexer step; it returns
True while there is more to catch up on.

It never takes the app down. Without a deployment, with the node unreachable or
serving another chain, it logs the problem once (as a warning; repeats at debug level)
and tries again after ``SHOTBANK_CHAIN_POLL_S``; it logs when it works again. A reorg
deeper than the indexer's window (a dev chain that was reset, say) drops the snapshot
and re-indexes it from the deployment's start block: the snapshot is derived from the
chain alone, so re-deriving it is always correct.
"""

from __future__ import annotations

import logging
from typing import Final

from sqlalchemy.engine import Engine
from web3 import Web3
from web3.exceptions import Web3Exception

from backend.core.config import Settings
from backend.services import stakes
from backend.services.chainstore import CheckpointMovedError, SqlIndexerStore
from shotbank.chain.contracts import ValidatorRegistry
from shotbank.chain.deployments import load_deployments
from shotbank.chain.errors import ChainError, NodeUnavailableError, ReorgTooDeepError
from shotbank.chain.indexer import Indexer
from shotbank.chain.rpc import RetryPolicy, connect

__all__ = ["ChainSync"]

logger = logging.getLogger(__name__)

#: Reads are retried this often within one step; the job's own poll retries after that.
_RPC_ATTEMPTS: Final = 2


class ChainSync:
    """Follows the ValidatorRegistry into the stake snapshot; see the module docstring."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        """Index into the database behind ``engine`` per ``settings`` (nothing connects yet)."""
        self.settings = settings
        self.store = SqlIndexerStore(engine)
        self._w3: Web3 | None = None
        self._indexer: Indexer | None = None
        self._source: tuple[int, str, int] | None = None
        self._problem: str | None = None

    @property
    def indexer(self) -> Indexer | None:
        """The current indexer, once a deployment was found and the node answered."""
        return self._indexer

    def step(self) -> bool:
        """One indexer step; True when it did work and more may be waiting."""
        try:
            indexer = self._prepare()
            if indexer is None:
                return False
            result = indexer.step()
        except NodeUnavailableError as exc:
            self._report("node", f"the chain node is unreachable ({exc})")
            return False
        except ReorgTooDeepError as exc:
            assert self._indexer is not None
            logger.error("stake snapshot: %s; re-indexing it from the start block", exc)
            with self.store.transaction():
                stakes.clear_snapshot(self.store, self._indexer.name)
            # Set up afresh (minStake read again): the chain may be another one now.
            self._indexer = None
            return True
        except CheckpointMovedError as exc:
            logger.info("stake snapshot: %s; continuing from there", exc)
            return True
        except (ChainError, Web3Exception) as exc:
            self._report(type(exc).__name__, str(exc))
            return False
        self._recovered()
        if result.rolled_back_to is not None:
            logger.warning(
                "stake snapshot: chain reorganised (%s); rolled back to block %d",
                result.reorg_reason,
                result.rolled_back_to,
            )
        return not result.caught_up

    def _prepare(self) -> Indexer | None:
        settings = self.settings
        path = settings.deployments_path
        deployment = load_deployments(path).get(settings.chain_id)
        if deployment is None:
            self._report(
                "deployment",
                f"no contracts are deployed on chain {settings.chain_id} according to {path}",
            )
            return None
        registry = deployment.address(ValidatorRegistry.NAME)
        source = (deployment.chain_id, registry, deployment.start_block)
        if self._indexer is not None and source == self._source:
            return self._indexer
        w3 = self._web3()
        min_stake = stakes.read_min_stake(w3, registry=registry)
        name = stakes.use_source(
            self.store,
            chain_id=settings.chain_id,
            registry=registry,
            start_block=deployment.start_block,
            min_stake_wei=min_stake,
            confirmations=settings.chain_confirmations,
        )
        self._indexer = Indexer(
            w3,
            self.store,
            stakes.StakeEventHandler(self.store),
            name=name,
            sources=[stakes.registry_log_source(registry)],
            start_block=deployment.start_block,
            confirmations=settings.chain_confirmations,
        )
        self._source = source
        logger.info(
            "stake snapshot: following ValidatorRegistry %s on chain %d from block %d "
            "(%d confirmations)",
            registry,
            settings.chain_id,
            deployment.start_block,
            settings.chain_confirmations,
        )
        return self._indexer

    def _web3(self) -> Web3:
        if self._w3 is None:
            self._w3 = connect(
                str(self.settings.chain_rpc_url),
                expected_chain_id=self.settings.chain_id,
                policy=RetryPolicy(
                    attempts=_RPC_ATTEMPTS,
                    backoff_s=0.2,
                    timeout_s=self.settings.chain_rpc_timeout_s,
                ),
            )
        return self._w3

    def _report(self, kind: str, message: str) -> None:
        # A down node would otherwise log the same warning every poll interval.
        level = logging.DEBUG if kind == self._problem else logging.WARNING
        logger.log(
            level,
            "stake snapshot: %s; retrying every %.1f s",
            message,
            self.settings.chain_poll_s,
        )
        self._problem = kind

    def _recovered(self) -> None:
        if self._problem is not None:
            logger.info("stake snapshot: chain sync works again")
            self._problem = None
