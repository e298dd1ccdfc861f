"""Co-signing epoch roots: recompute each closed epoch, sign its root only if it checks out.

Every ``epoch_poll_s`` (its own thread, so a large epoch never stalls scoring) the node
asks ``GET /epochs?limit=5`` and takes the ``closed`` epochs with a root, oldest first.
For one it has not signed it checks, in this order, and refuses to sign at the first
difference (:class:`~scoring.node.errors.EpochRefusedError`, logged as an error and
counted in ``shotbank_validator_epochs_refused_total{reason}``):

1. ``identity``: the epoch is on the backend's chain, its inputs name the same chain,
   distributor, epoch number and rule, and the distributor is the one the
   ValidatorRegistry on chain names (a backend cannot point the node at a contract of
   its own making);
2. ``funded_total``: the published ``funded_total`` is ``RewardDistributor.totalFunded()``
   read on chain at ``funding_block`` (an RPC that has not reached that block yet is
   waited for; past state needs an archive node on a public chain);
3. ``previous_cumulative``: the map the epoch builds on sums to the previous epoch's
   published ``cumulative_total`` and its tree has the previous epoch's published
   root; when this node signed the previous epoch, the root and total it recorded;
   when the previous root is on chain (pending, claimable or superseded), that one;
4. ``sales`` (rule ``shotbank-rewards/2``): the dataset sales the epoch earmarks are the
   chain's (:func:`check_sales`): the named DatasetMarket pays this distributor; every
   listed sale is one of its ``LicencePurchased`` events in ``(previous funding_block,
   funding_block]`` with the same block, version and contributor share, paid into the
   pool by a ``Funded`` event of that transaction; every sale of that range left out is
   of a version the backend answers 404 for (``GET /dataset-versions/{hash}``); and each
   sold version's ``manifest.jsonl`` hashes to the version id and counts, per
   contributor, the samples ``versions`` says;
5. ``inputs`` / ``root``: :func:`shotbank.rewards.allocate` over the inputs gives the
   published root and ``cumulative_total``.

Then the root is written to the signing record (:mod:`~scoring.node.signing_record`,
durably, refusing a second root for the epoch: ``conflict``), signed as the EIP-712
``EpochRoot`` of the ValidatorRegistry's domain on the backend's chain, and handed in
with ``POST /validator/epochs/{n}/signatures``. An epoch already recorded with the
published root whose signer list lacks this node (a crash or a lost answer after the
record) gets the same signature again; one recorded with another root is refused.

Trouble that may pass (backend or RPC unreachable, a 5xx, a locked record) costs one
round (``failures_total{stage="epochs"}``); the epoch is tried again next time. A
refused epoch is not looked at again until the node restarts: its published data do not
change once closed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3Exception

from scoring.node.client import ValidatorClient, ValidatorConfig
from scoring.node.errors import ConflictingRootError, EpochRefusedError, NodeStateError
from scoring.node.metrics import NodeMetrics
from scoring.node.signing_record import SignedEpoch, SigningRecord
from shotbank.chain.contracts import (
    DatasetMarket,
    RewardDistributor,
    RootStatus,
    ValidatorRegistry,
)
from shotbank.chain.eip712 import EpochRoot, sign_epoch_root
from shotbank.chain.errors import ChainError
from shotbank.chain.rpc import RetryPolicy, connect
from shotbank.client import ApiError, ClientError, UnexpectedResponseError
from shotbank.client.models import EpochStatus, EpochSummary, PublishedEpochInputs
from shotbank.datasets import DatasetError
from shotbank.rewards import RULE_VERSION_1, EpochInputs, RewardsError, allocate, build_rewards_tree

__all__ = [
    "EPOCHS_PER_LOOK",
    "BackendVersions",
    "ChainSale",
    "ChainView",
    "EpochCosigner",
    "EpochOutcome",
    "EpochOutcomeKind",
    "VersionSource",
    "check_sales",
    "verify_epoch",
]

log = logging.getLogger("scoring.node")

#: Closed epochs looked at per round (the newest); older ones are past signing anyway.
EPOCHS_PER_LOOK: Final = 5
#: On-chain roots the previous cumulative map is held to: a vetoed or challenged root
#: was judged wrong or is disputed, and its amounts are re-allocated by later epochs.
_BINDING_ROOTS: Final = frozenset({RootStatus.PENDING, RootStatus.CLAIMABLE, RootStatus.SUPERSEDED})
#: How long :meth:`EpochCosigner.close` waits for a round in progress.
_JOIN_S: Final = 30.0
#: Blocks per ``eth_getLogs`` request when reading an epoch's sales (providers cap ranges).
_LOG_SPAN: Final = 10_000
#: Sold versions whose sample counts a node keeps (a version's manifest never changes).
_VERSION_CACHE: Final = 1_024


@dataclass(frozen=True, slots=True)
class ChainSale:
    """A ``LicencePurchased`` event: the sale's place and its contributor share."""

    tx_hash: str
    log_index: int
    block_number: int
    version_id: str
    contributor_share: int


class ChainView:
    """The chain facts a published epoch is checked against, through one RPC connection."""

    def __init__(self, w3: Web3, *, registry: str) -> None:
        """Read through ``w3``; ``registry`` is the backend's ValidatorRegistry."""
        self.w3 = w3
        self.registry = ValidatorRegistry(w3, registry)

    def latest_block(self) -> int:
        """The chain's newest block number."""
        return int(self.w3.eth.block_number)

    def registry_distributor(self) -> str:
        """The RewardDistributor the registry is wired to (checksum address)."""
        return Web3.to_checksum_address(self.registry.reward_distributor())

    def total_funded_at(self, distributor: str, block: int) -> int:
        """``RewardDistributor.totalFunded()`` as of the end of ``block``."""
        contract = RewardDistributor(self.w3, distributor).contract
        return int(contract.functions.totalFunded().call(block_identifier=block))

    def market_distributor(self, market: str) -> str:
        """The RewardDistributor ``market`` pays its contributor shares into."""
        return Web3.to_checksum_address(DatasetMarket(self.w3, market).reward_distributor())

    def licence_sales(self, market: str, first: int, last: int) -> list[ChainSale]:
        """The ``LicencePurchased`` events of ``market`` in blocks ``first..last``."""
        event = DatasetMarket(self.w3, market).contract.events.LicencePurchased
        sales = []
        for start in range(max(first, 0), last + 1, _LOG_SPAN):
            for log in event.get_logs(from_block=start, to_block=min(last, start + _LOG_SPAN - 1)):
                sales.append(
                    ChainSale(
                        tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                        log_index=int(log["logIndex"]),
                        block_number=int(log["blockNumber"]),
                        version_id="0x" + bytes(log["args"]["versionId"]).hex(),
                        contributor_share=int(log["args"]["contributorShare"]),
                    )
                )
        return sales

    def funded_by(
        self, distributor: str, source: str, first: int, last: int
    ) -> dict[str, list[int]]:
        """The amounts ``source`` paid into ``distributor`` (``Funded``) in blocks
        ``first..last``, by transaction hash."""
        event = RewardDistributor(self.w3, distributor).contract.events.Funded
        funded: dict[str, list[int]] = {}
        for start in range(max(first, 0), last + 1, _LOG_SPAN):
            for log in event.get_logs(
                from_block=start,
                to_block=min(last, start + _LOG_SPAN - 1),
                argument_filters={"source": source},
            ):
                tx = "0x" + bytes(log["transactionHash"]).hex()
                funded.setdefault(tx, []).append(int(log["args"]["amount"]))
        return funded

    def stored_root(self, distributor: str, epoch: int) -> tuple[str, int, RootStatus] | None:
        """``(root, cumulative_total, status)`` of ``epoch`` on chain; ``None``: not submitted."""
        stored = RewardDistributor(self.w3, distributor).epoch_root(epoch)
        if stored.status is RootStatus.NONE:
            return None
        return stored.root.lower(), stored.cumulative_total, stored.status


def _refuse(epoch: int, reason: str, message: str) -> EpochRefusedError:
    return EpochRefusedError(epoch, reason, message)


class VersionSource(Protocol):
    """What the backend says of dataset versions (:class:`BackendVersions` asks it)."""

    def known(self, version_hash: str) -> bool:
        """Whether the backend has a ready version of this hash (False: it answers 404)."""
        ...

    def samples(self, version_hash: str) -> dict[str, int]:
        """Samples per contributor (checksum address) in the version's ``manifest.jsonl``,
        whose SHA-256 must be ``version_hash``; :class:`EpochRefusedError` otherwise."""
        ...


class BackendVersions:
    """:class:`VersionSource` over the backend's public dataset routes.

    Counts are computed from the downloaded manifest (checked against the version hash
    by :meth:`shotbank.datasets.DatasetVersionHandle.manifest`), never taken from the
    backend's word, and kept for the :data:`_VERSION_CACHE` latest versions.
    """

    def __init__(self, client: ValidatorClient) -> None:
        """Ask the backend behind ``client``."""
        self.client = client
        self._counts: dict[str, dict[str, int]] = {}

    def known(self, version_hash: str) -> bool:
        """Whether ``GET /dataset-versions/{version_hash}`` finds a version."""
        return version_hash in self._counts or self.client.version_by_hash(version_hash) is not None

    def samples(self, version_hash: str) -> dict[str, int]:
        """Samples per contributor, counted from the verified manifest."""
        if version_hash in self._counts:
            return self._counts[version_hash]
        handle = self.client.version_by_hash(version_hash)
        if handle is None:
            raise EpochRefusedError(0, "sales", f"the backend has no version {version_hash}")
        try:
            rows = handle.manifest()
        except DatasetError as exc:
            raise EpochRefusedError(
                0, "sales", f"the manifest of version {version_hash} does not check out: {exc}"
            ) from exc
        counts = dict(Counter(row.contributor for row in rows))
        if len(self._counts) >= _VERSION_CACHE:
            self._counts.pop(next(iter(self._counts)))
        self._counts[version_hash] = counts
        return counts


def check_sales(
    inputs: EpochInputs, *, chain: ChainView, sales_after: int, versions: VersionSource
) -> None:
    """Refuse (:class:`EpochRefusedError`, reason ``sales``) unless the epoch's sales and
    sold versions are the chain's and the manifests' (the module docstring, check 4).

    ``sales_after`` is the previous epoch's funding block (-1 for none): the epoch's
    sales are those of blocks ``sales_after + 1 .. funding_block``.
    """
    n = inputs.epoch
    if inputs.rule.version == RULE_VERSION_1 or inputs.market is None:
        return  # no market: nothing is earmarked, every sale's share is in the general pool
    market, distributor = inputs.market, inputs.distributor
    paid_into = chain.market_distributor(market)
    if paid_into != distributor:
        raise _refuse(n, "sales", f"market {market} pays {paid_into}, not {distributor}")
    first, last = sales_after + 1, inputs.funding_block
    on_chain = {(s.tx_hash, s.log_index): s for s in chain.licence_sales(market, first, last)}
    funded = chain.funded_by(distributor, market, first, last)
    for sale in inputs.sales:
        seen = on_chain.get((sale.tx_hash, sale.log_index))
        if seen is None:
            raise _refuse(
                n,
                "sales",
                f"sale {sale.tx_hash}:{sale.log_index} is no LicencePurchased event of market "
                f"{market} in blocks {first}..{last}",
            )
        if (seen.block_number, seen.version_id, seen.contributor_share) != (
            sale.block_number,
            sale.version_id,
            sale.amount,
        ):
            raise _refuse(
                n,
                "sales",
                f"sale {sale.tx_hash}:{sale.log_index} is listed as {sale.amount} for version "
                f"{sale.version_id} at block {sale.block_number}; the chain says "
                f"{seen.contributor_share} for {seen.version_id} at block {seen.block_number}",
            )
        paid = funded.get(sale.tx_hash, [])
        if sale.amount and sale.amount not in paid:
            raise _refuse(
                n,
                "sales",
                f"sale {sale.tx_hash}:{sale.log_index}'s {sale.amount} was not paid into the pool",
            )
        if sale.amount:
            paid.remove(sale.amount)  # one Funded event pays for one sale only
    listed = {(sale.tx_hash, sale.log_index) for sale in inputs.sales}
    omitted: dict[str, ChainSale] = {}
    for key, seen in sorted(on_chain.items()):
        if key not in listed:
            omitted.setdefault(seen.version_id, seen)
    for version_id, seen in sorted(omitted.items()):
        # One question per version: a backend that knows a version must list its sales.
        if version_id in inputs.versions or versions.known(version_id[2:]):
            raise _refuse(
                n,
                "sales",
                f"sale {seen.tx_hash}:{seen.log_index} of version {version_id}, which the "
                "backend knows, is left out",
            )
    for version_id, expected in inputs.versions.items():
        try:
            counted = versions.samples(version_id[2:])
        except EpochRefusedError as exc:
            raise _refuse(n, "sales", str(exc).removeprefix("epoch 0: ")) from exc
        if counted != expected:
            raise _refuse(
                n,
                "sales",
                f"version {version_id}'s manifest counts samples {counted} but the inputs "
                f"say {expected}",
            )


def verify_epoch(
    summary: EpochSummary,
    published: PublishedEpochInputs,
    *,
    chain_id: int,
    chain: ChainView,
    previous: EpochSummary | None,
    previous_signed: SignedEpoch | None,
    sales_after: int = -1,
    versions: VersionSource | None = None,
) -> EpochRoot:
    """The :class:`EpochRoot` to sign for ``summary``, once every check holds.

    ``chain_id`` is the backend's chain (``GET /validator/config``), ``previous`` the
    published summary of ``summary.previous_epoch`` and ``previous_signed`` what this
    node recorded for it; ``sales_after`` the funding block of epoch ``n - 1`` (-1 for
    none) and ``versions`` what the backend says of dataset versions, both for rule /2
    (see the module docstring for the checks). Raises
    :class:`EpochRefusedError` naming the first check that failed; chain and HTTP errors
    propagate (the caller tries again later).
    """
    n = summary.epoch
    inputs = published.inputs
    # 1. identity
    if summary.root is None:
        raise _refuse(n, "identity", "the epoch publishes no root to sign")
    if summary.chain_id != chain_id or inputs.chain_id != chain_id:
        raise _refuse(
            n,
            "identity",
            f"the epoch is on chain {summary.chain_id} (inputs: {inputs.chain_id}) but the "
            f"backend's validators work on chain {chain_id}",
        )
    if inputs.epoch != n or inputs.distributor != summary.distributor:
        raise _refuse(
            n,
            "identity",
            f"the inputs are for epoch {inputs.epoch} of distributor {inputs.distributor}, "
            f"the summary for epoch {n} of {summary.distributor}",
        )
    rule = (
        inputs.rule.version,
        inputs.rule.validator_share_bps,
        inputs.rule.contributor_cap_bps,
    )
    published_rule = (
        summary.rule.version,
        summary.rule.validator_share_bps,
        summary.rule.contributor_cap_bps,
    )
    if rule != published_rule:
        raise _refuse(
            n, "identity", f"the inputs' rule {rule} is not the published {published_rule}"
        )
    wired = chain.registry_distributor()
    if wired != summary.distributor:
        raise _refuse(
            n,
            "identity",
            f"distributor {summary.distributor} is not the RewardDistributor {wired} that "
            f"ValidatorRegistry {chain.registry.address} names",
        )
    # 2. funded_total
    if inputs.funding_block != summary.funding_block or inputs.funded_total != summary.funded_total:
        raise _refuse(
            n,
            "funded_total",
            f"the summary says {summary.funded_total} funded at block {summary.funding_block}, "
            f"the inputs {inputs.funded_total} at block {inputs.funding_block}",
        )
    on_chain = chain.total_funded_at(summary.distributor, summary.funding_block)
    if on_chain != inputs.funded_total:
        raise _refuse(
            n,
            "funded_total",
            f"published funded_total {inputs.funded_total} but RewardDistributor.totalFunded() "
            f"at block {summary.funding_block} is {on_chain}",
        )
    # 3. previous_cumulative
    _check_previous(summary, published, chain, previous, previous_signed)
    # 4. sales
    if inputs.rule.version != RULE_VERSION_1 and inputs.market is not None:
        if versions is None:
            raise _refuse(n, "sales", "the node has no way to look dataset versions up")
        check_sales(inputs, chain=chain, sales_after=sales_after, versions=versions)
    # 5. the allocation itself
    try:
        result = allocate(inputs)
    except RewardsError as exc:
        raise _refuse(n, "inputs", f"the inputs cannot be allocated: {exc}") from exc
    if result.root != summary.root:
        raise _refuse(
            n, "root", f"published root {summary.root} but inputs give {result.root or 'no root'}"
        )
    if result.cumulative_total != summary.cumulative_total:
        raise _refuse(
            n,
            "root",
            f"published cumulative_total {summary.cumulative_total} but inputs give "
            f"{result.cumulative_total}",
        )
    return EpochRoot(epoch=n, root=summary.root, cumulative_total=summary.cumulative_total)


def _check_previous(
    summary: EpochSummary,
    published: PublishedEpochInputs,
    chain: ChainView,
    previous: EpochSummary | None,
    previous_signed: SignedEpoch | None,
) -> None:
    n = summary.epoch
    inputs = published.inputs
    total = inputs.previous_cumulative_total
    if (
        inputs.previous_epoch != summary.previous_epoch
        or total != summary.previous_cumulative_total
    ):
        raise _refuse(
            n,
            "previous_cumulative",
            f"the summary builds on epoch {summary.previous_epoch} with "
            f"{summary.previous_cumulative_total}, the inputs on epoch {inputs.previous_epoch} "
            f"with {total}",
        )
    before = inputs.previous_epoch
    if before is None:
        return  # the first epoch: the model guarantees an empty map
    if previous is None or previous.epoch != before:
        raise _refuse(
            n, "previous_cumulative", f"epoch {before}, which it builds on, is not published"
        )
    if previous.chain_id != summary.chain_id or previous.distributor != summary.distributor:
        raise _refuse(
            n, "previous_cumulative", f"epoch {before} belongs to another chain or distributor"
        )
    if previous.cumulative_total != total:
        raise _refuse(
            n,
            "previous_cumulative",
            f"previous_cumulative sums to {total} but epoch {before} published cumulative_total "
            f"{previous.cumulative_total}",
        )
    leaves = {address: amount for address, amount in inputs.previous_cumulative.items() if amount}
    try:
        root = build_rewards_tree(leaves).root.lower() if leaves else None
    except RewardsError as exc:
        raise _refuse(
            n, "previous_cumulative", f"previous_cumulative is no rewards tree: {exc}"
        ) from exc
    if previous.root is not None and root != previous.root:
        raise _refuse(
            n,
            "previous_cumulative",
            f"previous_cumulative has root {root} but epoch {before} published root "
            f"{previous.root}",
        )
    if previous_signed is not None and not previous_signed.same_root(root or "", total):
        raise _refuse(
            n,
            "previous_cumulative",
            f"previous_cumulative has root {root} and total {total} but this node signed root "
            f"{previous_signed.root} with total {previous_signed.cumulative_total} for epoch "
            f"{before}",
        )
    stored = chain.stored_root(summary.distributor, before)
    if (
        stored is not None
        and stored[2] in _BINDING_ROOTS
        and (stored[0], stored[1]) != (root, total)
    ):
        raise _refuse(
            n,
            "previous_cumulative",
            f"previous_cumulative has root {root} and total {total} but epoch {before}'s root on "
            f"chain is {stored[0]} with total {stored[1]} ({stored[2].name.lower()})",
        )


class EpochOutcomeKind(StrEnum):
    """What one round did with one closed epoch."""

    SIGNED = "signed"  # verified, recorded, signed and accepted by the backend
    RESENT = "resent"  # recorded earlier with this root; the same signature handed in again
    ALREADY = "already"  # signed before, and the backend lists this node among the signers
    REFUSED = "refused"  # a check failed (or the backend refused the signature): not signed
    LATE = "late"  # the backend no longer takes signatures for it
    WAITING = "waiting"  # trouble that may pass (RPC, backend, record): tried again later


@dataclass(frozen=True, slots=True)
class EpochOutcome:
    """One closed epoch in one round: what happened, and why in a sentence."""

    epoch: int
    kind: EpochOutcomeKind
    detail: str = ""


class EpochCosigner:
    """Looks for closed epochs, verifies them and co-signs their roots (module docstring).

    Owns ``record`` (closed by :meth:`close`). :meth:`run_once` does one round;
    :meth:`start` runs rounds on a thread of its own every ``interval_s``.
    """

    def __init__(
        self,
        *,
        client: ValidatorClient,
        account: LocalAccount,
        config: ValidatorConfig,
        rpc_url: str,
        record: SigningRecord,
        metrics: NodeMetrics,
        rpc_timeout_s: float = 10.0,
    ) -> None:
        """Co-sign as ``account`` through the signed-in ``client``; read the chain at
        ``rpc_url``."""
        self.client = client
        self.account = account
        self.config = config
        self.rpc_url = rpc_url
        self.record = record
        self.metrics = metrics
        self._rpc_policy = RetryPolicy(attempts=3, timeout_s=rpc_timeout_s)
        self._chain: ChainView | None = None
        self._versions = BackendVersions(client)
        self._settled: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._round = threading.Lock()

    # --- the thread ----------------------------------------------------------------------

    def start(self, interval_s: float) -> None:
        """Run a round now and then every ``interval_s`` on a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the co-signer is already running")

        def serve() -> None:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except Exception:  # a bug must not end co-signing for the node's lifetime
                    log.exception("epoch co-signing: the round failed unexpectedly")
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=serve, name="node-epochs", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (waiting for a round in progress) and close the signing record."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_JOIN_S)
            if self._thread.is_alive():
                log.warning("epoch co-signing: the round in progress did not end in time")
        # A round still running now fails on the closed record before it could sign.
        self.record.close()

    # --- one round -----------------------------------------------------------------------

    def run_once(self) -> list[EpochOutcome]:
        """Look at the newest closed epochs once; what happened to each that was looked at."""
        with self._round:
            try:
                page = self.client.epochs(limit=EPOCHS_PER_LOOK)
            except ClientError as exc:
                self._failed(f"cannot list epochs: {exc}")
                return []
            summaries = {s.epoch: s for s in page.epochs}
            if summaries:
                oldest = min(summaries)
                self._settled = {n for n in self._settled if n >= oldest}
            outcomes = []
            for n in sorted(summaries):
                summary = summaries[n]
                if summary.status != EpochStatus.CLOSED or summary.root is None:
                    continue
                if n in self._settled:
                    continue
                outcome = self._process(summary, summaries)
                if outcome.kind is not EpochOutcomeKind.WAITING:
                    self._settled.add(n)
                outcomes.append(outcome)
            return outcomes

    def _process(self, summary: EpochSummary, page: dict[int, EpochSummary]) -> EpochOutcome:
        n = summary.epoch
        try:
            return self._verify_and_sign(summary, page)
        except EpochRefusedError as exc:
            return self._refused(n, exc.reason, str(exc))
        except ConflictingRootError as exc:
            return self._refused(n, "conflict", str(exc))
        except (ClientError, ChainError, Web3Exception, NodeStateError) as exc:
            return self._failed(f"epoch {n}: {exc}", epoch=n)

    def _verify_and_sign(
        self, summary: EpochSummary, page: dict[int, EpochSummary]
    ) -> EpochOutcome:
        n = summary.epoch
        assert summary.root is not None
        chain_id = self.config.chain_id
        if summary.chain_id != chain_id:
            raise _refuse(
                n,
                "identity",
                f"the epoch is on chain {summary.chain_id}, the backend's validators on {chain_id}",
            )
        recorded = self.record.recorded(chain_id, summary.distributor, n)
        if recorded is not None:
            if not recorded.same_root(summary.root, summary.cumulative_total):
                raise ConflictingRootError(
                    f"epoch {n}: this node signed root {recorded.root} with total "
                    f"{recorded.cumulative_total}, the backend now publishes root {summary.root} "
                    f"with total {summary.cumulative_total}; not signing a second root"
                )
            signers = summary.signatures.signers if summary.signatures is not None else ()
            if self.account.address in signers:
                return EpochOutcome(n, EpochOutcomeKind.ALREADY)
            # Recorded, but the signature never reached the backend: the same one again.
            epoch_root = EpochRoot(
                epoch=n, root=recorded.root, cumulative_total=recorded.cumulative_total
            )
            return self._sign_and_send(summary, epoch_root, again=True)
        chain = self._chain_view()
        latest = chain.latest_block()
        if summary.funding_block > latest:
            why = f"the RPC is at block {latest}, before the funding block {summary.funding_block}"
            log.info("epoch %d: waiting to verify it: %s", n, why)
            return EpochOutcome(n, EpochOutcomeKind.WAITING, why)
        try:
            published = self.client.epoch_inputs(n)
        except UnexpectedResponseError as exc:
            raise _refuse(n, "inputs", str(exc)) from exc
        previous = None
        before = published.inputs.previous_epoch
        if before is not None:
            previous = page.get(before) or self._published(before)
        epoch_root = verify_epoch(
            summary,
            published,
            chain_id=chain_id,
            chain=chain,
            previous=previous,
            previous_signed=(
                self.record.recorded(chain_id, summary.distributor, before) if before else None
            ),
            sales_after=self._sales_after(summary, page),
            versions=self._versions,
        )
        return self._sign_and_send(summary, epoch_root, again=False)

    def _sales_after(self, summary: EpochSummary, page: dict[int, EpochSummary]) -> int:
        """The funding block of epoch ``n - 1`` when it was closed against the same
        distributor (the backend's own rule), else -1: the epoch's sales start after it."""
        n = summary.epoch
        if n == 1:
            return -1
        before = page.get(n - 1) or self._published(n - 1)
        if (
            before is None
            or before.chain_id != summary.chain_id
            or before.distributor != summary.distributor
        ):
            return -1
        return before.funding_block

    def _published(self, epoch: int) -> EpochSummary | None:
        try:
            return self.client.epoch(epoch)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _sign_and_send(
        self, summary: EpochSummary, epoch_root: EpochRoot, *, again: bool
    ) -> EpochOutcome:
        n = summary.epoch
        chain_id = self.config.chain_id
        # Recorded (durably) before the signature exists: see signing_record.
        self.record.record_or_refuse(
            chain_id, summary.distributor, n, epoch_root.root, epoch_root.cumulative_total
        )
        signed = sign_epoch_root(
            self.account,
            epoch_root,
            chain_id=chain_id,
            verifying_contract=self.config.validator_registry,
        )
        try:
            receipt = self.client.submit_epoch_signature(
                n,
                root=epoch_root.root,
                cumulative_total=epoch_root.cumulative_total,
                signature=signed.signature,
            )
        except ApiError as exc:
            if exc.code == "epoch_not_signable":
                log.info("epoch %d: no longer takes signatures (%s)", n, exc.message)
                return EpochOutcome(n, EpochOutcomeKind.LATE, exc.message)
            if exc.status >= 500 or exc.code == "validator_not_staked":
                raise
            return self._refused(
                n,
                "rejected",
                f"epoch {n}: the backend refused the signature: {exc.status} {exc.code}: "
                f"{exc.message}",
            )
        self.metrics.epochs_signed.inc()
        quorum = "quorum reached" if receipt.quorum_reached else "no quorum yet"
        log.info(
            "epoch %d: root %s (cumulative total %d) verified and %s; %d of %d stake signed (%s)",
            n,
            epoch_root.root,
            epoch_root.cumulative_total,
            "signed again" if again else "signed",
            receipt.signed_stake,
            receipt.total_stake,
            quorum,
        )
        kind = EpochOutcomeKind.RESENT if again else EpochOutcomeKind.SIGNED
        return EpochOutcome(n, kind, quorum)

    # --- plumbing ------------------------------------------------------------------------

    def _chain_view(self) -> ChainView:
        if self._chain is None:
            w3 = connect(
                self.rpc_url, expected_chain_id=self.config.chain_id, policy=self._rpc_policy
            )
            self._chain = ChainView(w3, registry=self.config.validator_registry)
        return self._chain

    def _refused(self, epoch: int, reason: str, message: str) -> EpochOutcome:
        self.metrics.epochs_refused.labels(reason=reason).inc()
        # A signature the backend refused was produced already; anything else was not.
        log.error("%s" if reason == "rejected" else "%s; not signing", message)
        return EpochOutcome(epoch, EpochOutcomeKind.REFUSED, message)

    def _failed(self, message: str, *, epoch: int = 0) -> EpochOutcome:
        self.metrics.failures.labels(stage="epochs").inc()
        log.warning("epoch co-signing: %s (tried again next round)", message)
        return EpochOutcome(epoch, EpochOutcomeKind.WAITING, message)
