"""The background job that keeps the stake snapshot and the reward events in step with
the chain.

:class:`ChainSync` is a loop job (``BackgroundRunner.add_loop``): each :meth:`ChainSync.step`
finds the contracts of ``settings.chain_id`` in the deployments file and runs one step of
each of two indexers (``shotbank.chain.indexer.Indexer``), both with
``SHOTBANK_CHAIN_CONFIRMATIONS`` confirmations:

- the ValidatorRegistry's stake events into the stake snapshot (``backend.services.stakes``);
- the RewardDistributor's events into the reward tables (``backend.services.rewardsync``;
  skipped while the deployment has no distributor);
- the DatasetMarket's listings and licence purchases into the licence tables
  (``backend.services.marketsync``; skipped while the deployment has no market).

Each has its own checkpoint, so a distributor added to a database whose stake snapshot is
already far along is still indexed from the deployment's start block. The step returns
True while any has more to catch up on.

It never takes the app down. Without a deployment, with the node unreachable or
serving another chain, it logs the problem once (as a warning; repeats at debug level)
and tries again after ``SHOTBANK_CHAIN_POLL_S``; it logs when it works again. A reorg
deeper than an indexer's window (a dev chain that was reset, say) drops what that
indexer derived and re-indexes it from the deployment's start block: both are derived
from the chain alone, so re-deriving them is always correct.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from sqlalchemy.engine import Engine
from web3 import Web3
from web3.exceptions import Web3Exception

from backend.core.config import Settings
from backend.services import marketsync, rewardsync, stakes
from backend.services.chainstore import CheckpointMovedError, SqlIndexerStore
from shotbank.chain.contracts import DatasetMarket, RewardDistributor, ValidatorRegistry
from shotbank.chain.deployments import Deployment, load_deployments
from shotbank.chain.errors import ChainError, NodeUnavailableError, ReorgTooDeepError
from shotbank.chain.indexer import Indexer
from shotbank.chain.rpc import RetryPolicy, connect

__all__ = ["ChainSync"]

logger = logging.getLogger(__name__)

#: Reads are retried this often within one step; the job's own poll retries after that.
_RPC_ATTEMPTS: Final = 2


class ChainSync:
    """Follows the ValidatorRegistry into the stake snapshot, the RewardDistributor into
    the reward tables and the DatasetMarket into the licence tables; see the module
    docstring."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        """Index into the database behind ``engine`` per ``settings`` (nothing connects yet)."""
        self.settings = settings
        self.store = SqlIndexerStore(engine)
        # A store of its own: each store checks that the checkpoints it read did not move,
        # and one indexer's checkpoint must not fail the other's transactions.
        self.reward_store = SqlIndexerStore(engine)
        self.market_store = SqlIndexerStore(engine)
        self._w3: Web3 | None = None
        self._indexer: Indexer | None = None
        self._source: tuple[int, str, int] | None = None
        self._reward_indexer: Indexer | None = None
        self._reward_source: tuple[int, str, int] | None = None
        self._market_indexer: Indexer | None = None
        self._market_source: tuple[int, str, int] | None = None
        self._problem: str | None = None

    @property
    def indexer(self) -> Indexer | None:
        """The stake indexer, once a deployment was found and the node answered."""
        return self._indexer

    @property
    def reward_indexer(self) -> Indexer | None:
        """The distributor indexer, once a deployment with a distributor was found."""
        return self._reward_indexer

    def step(self) -> bool:
        """One step of each indexer; True when one did work and more may be waiting."""
        try:
            deployment = self._deployment()
            if deployment is None:
                return False
            more = self._step_stakes(deployment)
            more = self._step_rewards(deployment) or more
            more = self._step_market(deployment) or more
        except NodeUnavailableError as exc:
            self._report("node", f"the chain node is unreachable ({exc})")
            return False
        except (ChainError, Web3Exception) as exc:
            self._report(type(exc).__name__, str(exc))
            return False
        self._recovered()
        return more

    def _deployment(self) -> Deployment | None:
        settings = self.settings
        path = settings.deployments_path
        deployment = load_deployments(path).get(settings.chain_id)
        if deployment is None:
            self._report(
                "deployment",
                f"no contracts are deployed on chain {settings.chain_id} according to {path}",
            )
        return deployment

    def _step_stakes(self, deployment: Deployment) -> bool:
        def forget() -> None:
            # Set up afresh (minStake read again): the chain may be another one now.
            self._indexer = None

        return _step(
            self._prepare_stakes(deployment),
            what="stake snapshot",
            plural=False,
            store=self.store,
            clear=stakes.clear_snapshot,
            forget=forget,
        )

    def _step_rewards(self, deployment: Deployment) -> bool:
        def forget() -> None:
            self._reward_indexer = None

        return _step(
            self._prepare_rewards(deployment),
            what="reward events",
            store=self.reward_store,
            clear=rewardsync.clear_events,
            forget=forget,
        )

    @property
    def market_indexer(self) -> Indexer | None:
        """The market indexer, once a deployment with a DatasetMarket was found."""
        return self._market_indexer

    def _step_market(self, deployment: Deployment) -> bool:
        def forget() -> None:
            self._market_indexer = None

        return _step(
            self._prepare_market(deployment),
            what="licences",
            store=self.market_store,
            clear=marketsync.clear_events,
            forget=forget,
        )

    def _prepare_market(self, deployment: Deployment) -> Indexer | None:
        settings = self.settings
        market = deployment.contracts.get(DatasetMarket.NAME)
        if market is None:
            self._market_indexer = self._market_source = None
            return None
        source = (deployment.chain_id, market, deployment.start_block)
        if self._market_indexer is not None and source == self._market_source:
            return self._market_indexer
        name = marketsync.use_source(self.market_store, chain_id=settings.chain_id, market=market)
        self._market_indexer = Indexer(
            self._web3(),
            self.market_store,
            marketsync.MarketEventHandler(self.market_store),
            name=name,
            sources=[marketsync.market_log_source(market)],
            start_block=deployment.start_block,
            confirmations=settings.chain_confirmations,
        )
        self._market_source = source
        logger.info(
            "licences: following DatasetMarket %s on chain %d from block %d (%d confirmations)",
            market,
            settings.chain_id,
            deployment.start_block,
            settings.chain_confirmations,
        )
        return self._market_indexer

    def _prepare_stakes(self, deployment: Deployment) -> Indexer:
        settings = self.settings
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

    def _prepare_rewards(self, deployment: Deployment) -> Indexer | None:
        settings = self.settings
        distributor = deployment.contracts.get(RewardDistributor.NAME)
        if distributor is None:
            # An older deployments file: the stake snapshot still works without it.
            self._reward_indexer = self._reward_source = None
            return None
        source = (deployment.chain_id, distributor, deployment.start_block)
        if self._reward_indexer is not None and source == self._reward_source:
            return self._reward_indexer
        name = rewardsync.use_source(
            self.reward_store,
            chain_id=settings.chain_id,
            distributor=distributor,
            start_block=deployment.start_block,
            confirmations=settings.chain_confirmations,
        )
        self._reward_indexer = Indexer(
            self._web3(),
            self.reward_store,
            rewardsync.RewardEventHandler(self.reward_store),
            name=name,
            sources=[rewardsync.distributor_log_source(distributor)],
            start_block=deployment.start_block,
            confirmations=settings.chain_confirmations,
        )
        self._reward_source = source
        logger.info(
            "reward events: following RewardDistributor %s on chain %d from block %d "
            "(%d confirmations)",
            distributor,
            settings.chain_id,
            deployment.start_block,
            settings.chain_confirmations,
        )
        return self._reward_indexer

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
            "chain sync: %s; retrying every %.1f s",
            message,
            self.settings.chain_poll_s,
        )
        self._problem = kind

    def _recovered(self) -> None:
        if self._problem is not None:
            logger.info("chain sync works again")
            self._problem = None


def _step(
    indexer: Indexer | None,
    *,
    what: str,
    plural: bool = True,
    store: SqlIndexerStore,
    clear: Callable[[SqlIndexerStore, str], None],
    forget: Callable[[], None],
) -> bool:
    """One step of ``indexer`` (None: nothing to follow); True while there is more.

    A reorg deeper than the indexer's window clears what it derived (``clear``) and drops
    the indexer (``forget``) so that the next step re-indexes from the start block.
    """
    if indexer is None:
        return False
    try:
        result = indexer.step()
    except ReorgTooDeepError as exc:
        logger.error(
            "%s: %s; re-indexing %s from the start block", what, exc, "them" if plural else "it"
        )
        with store.transaction():
            clear(store, indexer.name)
        forget()
        return True
    except CheckpointMovedError as exc:
        logger.info("%s: %s; continuing from there", what, exc)
        return True
    if result.rolled_back_to is not None:
        logger.warning(
            "%s: chain reorganised (%s); rolled back to block %d",
            what,
            result.reorg_reason,
            result.rolled_back_to,
        )
    return not result.caught_up
