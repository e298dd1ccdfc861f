"""Buying a dataset version's licence on chain, then waiting until the backend grants it.

:func:`buy_licence` is what :meth:`ShotbankClient.buy <shotbank.client.ShotbankClient.buy>`
runs (``docs/api/datasets.md``, "Licences" and "Listing on chain"):

1. the version's ``listing`` from the backend says which ``DatasetMarket`` on which chain
   sells it; the chain itself is then asked for the truth (the backend's copy lags by its
   confirmations): the version is known and listed, the wallet holds no licence yet, the
   price is within ``max_price`` and the wallet's SHOT balance covers it;
2. one ``purchaseWithPermit(versionId, maxPrice, deadline, v, r, s)`` transaction with an
   ERC-2612 permit of ``maxPrice`` signed for the ShotToken's own EIP-712 domain (read
   from the token, ERC-5267 ``eip712Domain()``), or with ``permit=False`` an ``approve``
   (only when the allowance is short) and ``purchase(versionId, maxPrice)``;
3. ``GET /licences`` is polled until the purchase shows (the backend indexes it once it
   is its confirmations deep), with a status line saying how deep it is.

``max_price`` defaults to the price the backend shows: the price the caller saw. A price
raised on chain before sending is refused without a transaction; one raised while the
transaction is in flight makes the market revert (``DatasetMarketPriceAboveMax``), and
both raise :class:`PriceAboveMaxError` with the two prices.

Errors::

    ShotbankError
    └── DatasetError (shotbank.datasets.format)
        └── PurchaseError                          no licence was bought (the message says why)
            ├── NoRpcUrlError (+ValueError)         no chain RPC URL given or configured
            ├── NotForSaleError                     unpriced, pending, unlisted, unknown on chain
            ├── AlreadyLicensedError                the wallet holds a licence already
            ├── InsufficientBalanceError            the wallet's SHOT is short (``shortfall``)
            ├── PriceAboveMaxError                  the price is above ``max_price``
            ├── PurchaseFailedError                 the chain refused or did not answer
            └── LicenceWaitTimeoutError (+TimeoutError)  bought; not yet shown by the backend
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Final

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from rich.console import Console
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.types import TxReceipt

from shotbank.chain.contracts import ContractCall, DatasetMarket, ShotToken, send_call
from shotbank.chain.errors import (
    ChainError,
    ChainIdMismatchError,
    NodeUnavailableError,
    TransactionRevertedError,
    TransactionTimeoutError,
)
from shotbank.chain.rpc import RetryPolicy, connect
from shotbank.client.models import Licence
from shotbank.datasets.client import DatasetListing, DatasetVersionHandle, DatasetVersionSummary
from shotbank.datasets.format import DatasetError

if TYPE_CHECKING:
    from shotbank.client.api import ShotbankClient

__all__ = [
    "MAX_WAIT_S",
    "PERMIT_LIFETIME_S",
    "AlreadyLicensedError",
    "InsufficientBalanceError",
    "LicenceWaitTimeoutError",
    "NoRpcUrlError",
    "NotForSaleError",
    "PriceAboveMaxError",
    "PurchaseError",
    "PurchaseFailedError",
    "buy_licence",
    "format_shot",
]

#: Longest wait for a licence ``buy`` accepts (a day: confirmations on a slow chain).
MAX_WAIT_S: Final = 86_400.0
#: How long a purchase permit stays valid past the chain's latest block time.
PERMIT_LIFETIME_S: Final = 3600
#: How often ``GET /licences`` is asked while waiting.
_POLL_S: Final = 0.25
_SHOT_DECIMALS: Final = 18
_MAX_PRICE: Final = 2**256 - 1
_PERMIT_TYPES: Final = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


class PurchaseError(DatasetError):
    """No licence was bought; the message says why and what to do."""


class NoRpcUrlError(PurchaseError, ValueError):
    """No chain RPC URL: pass ``rpc_url=`` or set ``SHOTBANK_RPC_URL``."""


class NotForSaleError(PurchaseError):
    """The version cannot be bought now: not ready, unpriced, pending, unlisted or unknown."""


class AlreadyLicensedError(PurchaseError):
    """The wallet already holds a licence for the version (on chain)."""


class InsufficientBalanceError(PurchaseError):
    """The wallet's SHOT balance is below the price; ``shortfall`` is the missing wei."""

    def __init__(self, message: str, *, balance: int, price: int) -> None:
        super().__init__(message)
        self.balance = balance
        self.price = price
        self.shortfall = price - balance


class PriceAboveMaxError(PurchaseError):
    """The version's price is above ``max_price`` (``in_flight``: it rose after sending)."""

    def __init__(self, message: str, *, price: int, max_price: int, in_flight: bool) -> None:
        super().__init__(message)
        self.price = price
        self.max_price = max_price
        self.in_flight = in_flight


class PurchaseFailedError(PurchaseError):
    """The chain refused the purchase (a decoded revert) or could not be reached."""


class LicenceWaitTimeoutError(PurchaseError, TimeoutError):
    """The purchase is on chain but the backend did not show the licence in time.

    Nothing is lost: the licence appears once the backend indexes the purchase
    (``tx_hash``); ``client.licences()`` shows it then.
    """

    def __init__(self, message: str, *, tx_hash: str) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


def format_shot(wei: int) -> str:
    """``wei`` base units as SHOT, exactly: ``1,234.5 SHOT``."""
    whole, fraction = divmod(wei, 10**_SHOT_DECIMALS)
    digits = f".{fraction:0{_SHOT_DECIMALS}d}".rstrip("0") if fraction else ""
    return f"{whole:,}{digits} SHOT"


def _listing(handle: DatasetVersionHandle) -> DatasetListing:
    """The version's listing, fresh from the backend, or :class:`NotForSaleError`."""
    summary = handle.refresh()
    name = f"version {summary.number} of dataset {summary.dataset_id}"
    if summary.status != "ready":
        raise NotForSaleError(f"{name} is {summary.status}, not ready: it cannot be bought yet")
    listing = summary.listing
    if listing is None:
        raise NotForSaleError(f"the backend shows no listing for {name}: it is not for sale")
    if listing.status == "unpriced":
        raise NotForSaleError(f"{name} has no price: it is not for sale")
    if listing.status == "pending" or listing.market is None:
        raise NotForSaleError(
            f"{name} is being listed on chain and the backend has not indexed the listing "
            "yet: try again in a minute"
        )
    if listing.status == "unlisted" or listing.listed is False:
        raise NotForSaleError(f"{name} was taken off sale")
    return listing


def _connect(rpc_url: str, chain_id: int) -> Web3:
    try:
        return connect(
            rpc_url, expected_chain_id=chain_id, policy=RetryPolicy(attempts=3, timeout_s=30.0)
        )
    except ChainIdMismatchError as exc:
        raise PurchaseFailedError(
            f"{exc}: the version is sold on chain {chain_id}; point the RPC URL at that chain"
        ) from exc
    except NodeUnavailableError as exc:
        raise PurchaseFailedError(f"cannot reach the chain RPC at {rpc_url}: {exc}") from exc


def _permit_call(
    w3: Web3,
    account: LocalAccount,
    market: DatasetMarket,
    token: ShotToken,
    version_id: str,
    max_price: int,
) -> ContractCall:
    """``purchaseWithPermit`` with a permit of ``max_price`` signed for the token's domain."""
    _, name, version, chain_id, verifying, _, _ = token.contract.functions.eip712Domain().call()
    deadline = int(w3.eth.get_block("latest")["timestamp"]) + PERMIT_LIFETIME_S
    message = {
        "owner": account.address,
        "spender": market.address,
        "value": max_price,
        "nonce": token.nonces(account.address),
        "deadline": deadline,
    }
    typed = {
        "types": _PERMIT_TYPES,
        "primaryType": "Permit",
        "domain": {
            "name": str(name),
            "version": str(version),
            "chainId": int(chain_id),
            "verifyingContract": Web3.to_checksum_address(verifying),
        },
        "message": message,
    }
    signed = account.sign_message(encode_typed_data(full_message=typed))
    data = market.contract.encode_abi(
        "purchaseWithPermit",
        args=[
            bytes.fromhex(version_id[2:]),
            max_price,
            deadline,
            signed.v,
            signed.r.to_bytes(32, "big"),
            signed.s.to_bytes(32, "big"),
        ],
    )
    return ContractCall(
        to=market.address, data=data, description="DatasetMarket.purchaseWithPermit"
    )


def _send(
    w3: Web3,
    account: LocalAccount,
    market: DatasetMarket,
    token: ShotToken,
    version_id: str,
    max_price: int,
    *,
    permit: bool,
    timeout_s: float,
) -> TxReceipt:
    """The purchase transaction(s); the purchase's receipt."""
    if permit:
        call = _permit_call(w3, account, market, token, version_id, max_price)
    else:
        if token.allowance(account.address, market.address) < max_price:
            send_call(w3, account, token.approve(market.address, max_price), timeout_s=timeout_s)
        call = market.purchase(version_id, max_price)
    return send_call(w3, account, call, timeout_s=timeout_s)


def _diagnose(
    exc: ChainError,
    market: DatasetMarket,
    buyer: str,
    version_id: str,
    max_price: int,
) -> PurchaseError:
    """What a refused purchase means, asked of the chain after the fact."""
    try:
        price = market.version(version_id).price
        licensed = market.has_licence(buyer, version_id)
    except (ContractLogicError, Web3Exception):
        return PurchaseFailedError(f"the purchase failed: {exc}")
    if price > max_price:
        return PriceAboveMaxError(
            f"the price of {version_id} rose to {format_shot(price)} while the purchase was "
            f"in flight, above max_price {format_shot(max_price)}: the market refused it "
            f"(DatasetMarketPriceAboveMax); nothing was paid. Buy again at the new price "
            "with max_price raised if you accept it",
            price=price,
            max_price=max_price,
            in_flight=True,
        )
    if licensed:
        return AlreadyLicensedError(
            f"{buyer} already holds a licence for {version_id} (bought by another "
            "transaction in the meantime)"
        )
    return PurchaseFailedError(f"the purchase failed: {exc}")


def _status(progress: bool) -> tuple[AbstractContextManager[Any], Callable[[str], None]]:
    """A status line on stderr (or nothing), and the function that updates it."""
    if not progress:
        return nullcontext(), lambda _text: None
    status = Console(stderr=True).status("")

    def update(text: str) -> None:
        status.update(text)

    return status, update


def _own_licences(client: ShotbankClient, buyer: str) -> list[Licence]:
    """``buyer``'s licences: the caller's own route when the client speaks for ``buyer``,
    otherwise the public per-address route."""
    if client.signs_requests:
        speaks_for_buyer = client.account is not None and client.account.address == buyer
    else:
        speaks_for_buyer = client.token is not None and client.address == buyer
    return client.licences() if speaks_for_buyer else client.licences(buyer)


def _wait_for_licence(
    client: ShotbankClient,
    w3: Web3,
    buyer: str,
    version_id: str,
    receipt: TxReceipt,
    deadline: float,
    update: Callable[[str], None],
) -> Licence:
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    block = int(receipt["blockNumber"])
    while True:
        for licence in _own_licences(client, buyer):
            if licence.version_id == version_id.lower():
                return licence
        now = time.monotonic()
        if now >= deadline:
            raise LicenceWaitTimeoutError(
                f"bought {version_id} in transaction {tx_hash} (block {block}), but the "
                "backend has not shown the licence yet; it will once the purchase is "
                "indexed: see client.licences() or `shotbank datasets licences` later",
                tx_hash=tx_hash,
            )
        try:
            depth = int(w3.eth.block_number) - block + 1
            where = f"{depth} block{'s' if depth != 1 else ''} deep"
        except Web3Exception:
            where = "depth unknown"
        update(
            f"bought in {tx_hash[:12]}… (block {block}, {where}); waiting for the backend to "
            f"index it ({deadline - now:.0f} s left)"
        )
        client._sleep(min(_POLL_S, max(deadline - now, 0.0)))


def buy_licence(
    client: ShotbankClient,
    version: DatasetVersionHandle | DatasetVersionSummary,
    *,
    account: LocalAccount | None = None,
    rpc_url: str | None = None,
    max_price: int | None = None,
    permit: bool = True,
    timeout: float = 300.0,
    progress: bool = True,
) -> Licence:
    """Buy a licence for ``version`` and return it once the backend shows it.

    See the module docstring for the steps and :class:`PurchaseError`'s subclasses for
    what can go wrong. A client with neither a session nor an account adopts ``account``,
    so its downloads are signed by the wallet that now holds the licence.
    """
    if not 0 < timeout <= MAX_WAIT_S:
        raise ValueError(f"timeout must be within (0, {MAX_WAIT_S:g}] seconds")
    if max_price is not None and (isinstance(max_price, bool) or not 0 < max_price <= _MAX_PRICE):
        raise ValueError("max_price must be a positive uint256 (SHOT wei)")
    deadline = time.monotonic() + timeout
    buyer_account = account or client.account
    if buyer_account is None:
        raise PurchaseError(
            "no wallet to buy with: pass account=, or give the client one "
            "(ShotbankClient(..., account=...) or sign_in(account))"
        )
    rpc = rpc_url or client.rpc_url
    if rpc is None:
        raise NoRpcUrlError(
            "no chain RPC URL to send the purchase through: pass rpc_url= or set SHOTBANK_RPC_URL"
        )
    handle = (
        version
        if isinstance(version, DatasetVersionHandle)
        else DatasetVersionHandle(client, version)
    )
    listing = _listing(handle)
    assert listing.market is not None  # _listing refuses a listing without one
    version_id = listing.version_id
    buyer = buyer_account.address
    status, update = _status(progress)
    with status:
        update(f"checking {version_id[:12]}… on DatasetMarket {listing.market}")
        w3 = _connect(rpc, listing.chain_id)
        market = DatasetMarket(w3, listing.market)
        try:
            on_chain = market.version(version_id)
        except ContractLogicError as exc:
            raise NotForSaleError(
                f"{version_id} is not a version of DatasetMarket {market.address} on chain "
                f"{listing.chain_id}: {exc}"
            ) from exc
        except Web3Exception as exc:
            raise PurchaseFailedError(f"cannot read {market!r} at {rpc}: {exc}") from exc
        if not on_chain.listed:
            raise NotForSaleError(f"{version_id} is not for sale on {market!r} (unlisted)")
        if market.has_licence(buyer, version_id):
            raise AlreadyLicensedError(
                f"{buyer} already holds a licence for {version_id}: download it "
                "(client.licences() lists it)"
            )
        limit = max_price if max_price is not None else listing.price or on_chain.price
        if on_chain.price > limit:
            raise PriceAboveMaxError(
                f"{version_id} costs {format_shot(on_chain.price)} on chain, above max_price "
                f"{format_shot(limit)}; nothing was sent. Pass max_price={on_chain.price} to "
                "accept the new price",
                price=on_chain.price,
                max_price=limit,
                in_flight=False,
            )
        token = ShotToken(w3, market.token())
        balance = token.balance_of(buyer)
        if balance < on_chain.price:
            raise InsufficientBalanceError(
                f"{buyer} holds {format_shot(balance)}, the licence costs "
                f"{format_shot(on_chain.price)}: {format_shot(on_chain.price - balance)} short",
                balance=balance,
                price=on_chain.price,
            )
        how = "purchaseWithPermit" if permit else "approve + purchase"
        update(f"buying {version_id[:12]}… for {format_shot(on_chain.price)} ({how})")
        try:
            receipt = _send(
                w3,
                buyer_account,
                market,
                token,
                version_id,
                limit,
                permit=permit,
                timeout_s=max(deadline - time.monotonic(), 1.0),
            )
        except TransactionTimeoutError as exc:
            raise PurchaseFailedError(
                f"the purchase was sent but no receipt came in time ({exc}); it may still be "
                "mined: check client.licences() before buying again"
            ) from exc
        except TransactionRevertedError as exc:
            raise _diagnose(exc, market, buyer, version_id, limit) from exc
        except (ChainError, Web3Exception) as exc:
            raise PurchaseFailedError(f"the purchase failed at {rpc}: {exc}") from exc
        licence = _wait_for_licence(client, w3, buyer, version_id, receipt, deadline, update)
    if client.account is None and client.token is None:
        client.account = buyer_account
    return licence
