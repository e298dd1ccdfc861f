"""A test wallet for the browser tests: EIP-1193 providers injected into the page.

The page side (``wallet.js``, added with ``context.add_init_script``) announces each
wallet through EIP-6963 and sets one as ``window.ethereum``; every request crosses to
Python through ``context.expose_binding``, where an :class:`InjectedWallet` answers it
with a real key: ``personal_sign`` and ``eth_signTypedData_v4`` are signed with
eth_account, ``eth_sendTransaction`` is signed here and sent to the dev node, reads are
forwarded to it. Nothing is mocked on the dapp's side of the provider interface.

Knobs for the failure paths: start on another chain (``chain_id=1``), a wallet that has
never heard of the dev chain (``knows_dev_chain=False``: switching answers 4902 until the
dapp adds it), rejecting the next signature (:meth:`InjectedWallet.reject_next_signature`,
EIP-1193 error 4001), several wallets in one page, a wallet that is not announced.
"""

from __future__ import annotations

import base64
import json
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.hexadecimal import is_hex
from playwright.sync_api import BrowserContext, Page
from web3 import Web3

from shotbank.chain.devnode import DEV_CHAIN_ID

__all__ = [
    "BINDING",
    "MAINNET_CHAIN_ID",
    "InjectedWallet",
    "ProviderError",
    "WalletCall",
    "install_wallets",
    "recover_personal_sign",
]

#: The name of the exposed binding the page-side script calls.
BINDING: Final = "__shotbankTestWalletBridge"
#: Every real wallet knows Ethereum mainnet; it is the "wrong network" of the tests.
MAINNET_CHAIN_ID: Final = 1
#: The announced icon (EIP-6963 asks for a data URI).
ICON: Final = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
        b'<rect width="32" height="32" rx="6" fill="#3b5bdb"/></svg>'
    ).decode()
)
#: Requests answered by the dev node unchanged (reads, no key involved).
NODE_METHODS: Final = frozenset(
    {
        "eth_blockNumber",
        "eth_call",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getCode",
        "eth_getLogs",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_maxPriorityFeePerGas",
    }
)
#: Largest message a test wallet signs (a SIWE message is well under 2 KB).
MAX_MESSAGE_BYTES: Final = 16 * 1024

_SCRIPT: Final = Path(__file__).with_name("wallet.js")


class ProviderError(Exception):
    """An EIP-1193 error answer (``code`` as in EIP-1193/EIP-1474), sent to the page."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class WalletCall:
    """One request the page made of a wallet."""

    method: str
    params: Any


@dataclass
class InjectedWallet:
    """The Python side of one injected wallet: a key, the chain it reports, its answers.

    ``node`` is the dev chain's Web3 (needed for ``eth_sendTransaction`` and reads);
    ``chain_id`` is the chain the wallet starts on; ``knows_dev_chain`` whether
    ``wallet_switchEthereumChain`` to the dev chain works without adding it first.
    """

    account: LocalAccount
    node: Web3 | None = None
    name: str = "Shotbank Test Wallet"
    rdns: str = "dev.shotbank.testwallet"
    chain_id: int = DEV_CHAIN_ID
    dev_chain_id: int = DEV_CHAIN_ID
    knows_dev_chain: bool = True
    announce: bool = True
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    connected: bool = False
    calls: list[WalletCall] = field(default_factory=list)
    added_chains: list[dict[str, Any]] = field(default_factory=list)
    #: Python exceptions raised while answering (a bug in the wallet, not in the dapp).
    failures: list[str] = field(default_factory=list)
    #: The wallet's id in the page (set by :func:`install_wallets`).
    page_id: str | None = None
    _reject_next: bool = field(default=False, init=False)
    _known_chains: set[int] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self._known_chains = {MAINNET_CHAIN_ID, self.chain_id}
        if self.knows_dev_chain:
            self._known_chains.add(self.dev_chain_id)

    @property
    def address(self) -> str:
        """The wallet's checksummed address."""
        return str(self.account.address)

    def switch_chain_in_wallet(self, page: Page, chain_id: int) -> None:
        """The user switches the wallet to ``chain_id`` in its own UI (``chainChanged``)."""
        if self.page_id is None:
            raise ValueError("install the wallet into the page's context first")
        self.chain_id = chain_id
        self._known_chains.add(chain_id)
        page.evaluate(
            "([emit, id, chain]) => window[emit](id, 'chainChanged', chain)",
            [BINDING + "Emit", self.page_id, hex(chain_id)],
        )

    def reject_next_signature(self) -> None:
        """Answer the next signing request (message, typed data or transaction) with 4001."""
        self._reject_next = True

    def methods_called(self) -> list[str]:
        """The methods the page called, in order."""
        return [call.method for call in self.calls]

    def answer(self, method: str, params: Any) -> dict[str, Any]:
        """The bridge's answer to one request: ``result`` or ``error``, plus ``events``."""
        self.calls.append(WalletCall(method=method, params=params))
        events: list[dict[str, Any]] = []
        try:
            return {"result": self._dispatch(method, params, events), "events": events}
        except ProviderError as exc:
            return {"error": {"code": exc.code, "message": exc.message}, "events": events}
        except Exception as exc:  # a wallet bug: reported to the page and to the test
            self.failures.append(f"{method}: {traceback.format_exc()}")
            return {"error": {"code": -32603, "message": f"test wallet: {exc}"}, "events": events}

    # --- requests ---------------------------------------------------------------------

    def _dispatch(self, method: str, params: Any, events: list[dict[str, Any]]) -> Any:
        args = params if isinstance(params, list) else [params]
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "net_version":
            return str(self.chain_id)
        if method == "eth_accounts":
            return [self.address] if self.connected else []
        if method in {"eth_requestAccounts", "wallet_requestPermissions"}:
            if not self.connected:
                self.connected = True
                events.append({"name": "accountsChanged", "data": [self.address]})
            if method == "wallet_requestPermissions":
                return [{"parentCapability": "eth_accounts"}]
            return [self.address]
        if method == "wallet_getPermissions":
            return [{"parentCapability": "eth_accounts"}] if self.connected else []
        if method == "wallet_switchEthereumChain":
            return self._switch(_chain_id(_first_object(args).get("chainId")), events)
        if method == "wallet_addEthereumChain":
            return self._add_chain(_first_object(args), events)
        if method == "personal_sign":
            return self._personal_sign(args)
        if method == "eth_signTypedData_v4":
            return self._sign_typed_data(args)
        if method == "eth_sendTransaction":
            return self._send_transaction(_first_object(args))
        if method in NODE_METHODS:
            return self._node_request(method, args)
        raise ProviderError(4200, f"The test wallet does not support {method}")

    def _switch(self, chain_id: int, events: list[dict[str, Any]]) -> None:
        if chain_id not in self._known_chains:
            raise ProviderError(4902, f"Unrecognized chain ID {hex(chain_id)}; add it first")
        if chain_id != self.chain_id:
            self.chain_id = chain_id
            events.append({"name": "chainChanged", "data": hex(chain_id)})

    def _add_chain(self, spec: dict[str, Any], events: list[dict[str, Any]]) -> None:
        # EIP-3085: chainId, chainName and at least one RPC URL are what a wallet needs.
        chain_id = _chain_id(spec.get("chainId"))
        rpc_urls = spec.get("rpcUrls")
        if not isinstance(spec.get("chainName"), str) or not spec["chainName"]:
            raise ProviderError(-32602, "wallet_addEthereumChain: chainName is required")
        if not isinstance(rpc_urls, list) or not rpc_urls:
            raise ProviderError(-32602, "wallet_addEthereumChain: rpcUrls is required")
        self.added_chains.append(spec)
        self._known_chains.add(chain_id)
        # Like MetaMask, adding a chain also offers to switch to it (accepted here).
        self._switch(chain_id, events)

    def _require_signer(self, address: Any) -> None:
        if not self.connected:
            raise ProviderError(4100, "Not connected: call eth_requestAccounts first")
        if not isinstance(address, str) or address.lower() != self.address.lower():
            raise ProviderError(4100, f"The test wallet does not hold {address!r}")
        if self._reject_next:
            self._reject_next = False
            raise ProviderError(4001, "User rejected the request.")

    def _personal_sign(self, args: list[Any]) -> str:
        if len(args) < 2 or not isinstance(args[0], str):
            raise ProviderError(-32602, "personal_sign takes [message, address]")
        message, address = args[0], args[1]
        self._require_signer(address)
        if len(message) > 2 * MAX_MESSAGE_BYTES:
            raise ProviderError(-32602, "message too long")
        # Wallets treat a 0x-hex string as bytes (what viem sends) and anything else as text.
        encoded = (
            encode_defunct(hexstr=message)
            if message.startswith("0x") and is_hex(message)
            else encode_defunct(text=message)
        )
        return _hex(self.account.sign_message(encoded).signature)

    def _sign_typed_data(self, args: list[Any]) -> str:
        if len(args) < 2:
            raise ProviderError(-32602, "eth_signTypedData_v4 takes [address, typedData]")
        address, data = args[0], args[1]
        self._require_signer(address)
        typed = json.loads(data) if isinstance(data, str) else data
        if not isinstance(typed, dict):
            raise ProviderError(-32602, "typed data must be a JSON object")
        return _hex(self.account.sign_typed_data(full_message=typed).signature)

    def _send_transaction(self, spec: dict[str, Any]) -> str:
        self._require_signer(spec.get("from"))
        w3 = self._node_for_current_chain()
        tx: dict[str, Any] = {
            "from": self.address,
            "value": _int(spec.get("value", "0x0")),
            "data": spec.get("data") or spec.get("input") or "0x",
            "chainId": self.chain_id,
            "nonce": (
                _int(spec["nonce"])
                if spec.get("nonce") is not None
                else w3.eth.get_transaction_count(self.account.address, "pending")
            ),
        }
        if spec.get("to"):
            tx["to"] = to_checksum_address(spec["to"])
        tx["gas"] = _int(spec["gas"]) if spec.get("gas") else w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
        if spec.get("gasPrice"):
            tx["gasPrice"] = _int(spec["gasPrice"])
        else:
            priority = _int(spec.get("maxPriorityFeePerGas") or hex(w3.eth.max_priority_fee))
            base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tx["maxPriorityFeePerGas"] = priority
            tx["maxFeePerGas"] = _int(spec.get("maxFeePerGas") or hex(2 * base + priority))
        del tx["from"]
        signed = self.account.sign_transaction(tx)
        return _hex(w3.eth.send_raw_transaction(signed.raw_transaction))

    def _node_for_current_chain(self) -> Web3:
        if self.node is None or self.chain_id != self.dev_chain_id:
            raise ProviderError(4901, f"The test wallet has no node for chain {self.chain_id}")
        return self.node

    def _node_request(self, method: str, args: list[Any]) -> Any:
        response = self._node_for_current_chain().provider.make_request(method, args)  # type: ignore[arg-type]
        if "error" in response:
            error = response["error"]
            raise ProviderError(int(error.get("code", -32603)), str(error.get("message")))
        return response.get("result")


def install_wallets(
    context: BrowserContext,
    wallets: list[InjectedWallet],
    *,
    window_ethereum: InjectedWallet | bool | None = True,
) -> None:
    """Inject ``wallets`` into every page ``context`` opens from now on.

    ``window_ethereum``: the wallet set as ``window.ethereum`` (``True``: the first one,
    ``False``/``None``: none). Call once per context, before opening its pages.
    """
    if not wallets or len(wallets) > 8:
        raise ValueError("install between 1 and 8 wallets")
    by_id = {str(index): wallet for index, wallet in enumerate(wallets)}
    for key, wallet in by_id.items():
        wallet.page_id = key
    if window_ethereum is True:
        window_id: str | None = "0"
    elif window_ethereum is None or window_ethereum is False:
        window_id = None
    else:
        window_id = next(key for key, wallet in by_id.items() if wallet is window_ethereum)

    def bridge(_source: Any, request: Any) -> dict[str, Any]:
        wallet = by_id.get(str(request.get("wallet"))) if isinstance(request, dict) else None
        if wallet is None or not isinstance(request.get("method"), str):
            return {"error": {"code": -32600, "message": "test wallet: malformed request"}}
        return wallet.answer(request["method"], request.get("params", []))

    config = {
        "binding": BINDING,
        "windowEthereum": window_id,
        "wallets": [
            {
                "id": key,
                "uuid": wallet.uuid,
                "name": wallet.name,
                "icon": ICON,
                "rdns": wallet.rdns,
                "announce": wallet.announce,
            }
            for key, wallet in by_id.items()
        ],
    }
    # The binding first: the init script looks it up when the page makes a request.
    context.expose_binding(BINDING, bridge)
    script = _SCRIPT.read_text(encoding="utf-8").replace("__WALLET_CONFIG__", json.dumps(config))
    context.add_init_script(script=script)


def recover_personal_sign(message: str, signature: str) -> str:
    """The address that signed ``message`` (text) with ``personal_sign``."""
    return str(Account.recover_message(encode_defunct(text=message), signature=signature))


def _first_object(args: list[Any]) -> dict[str, Any]:
    if not args or not isinstance(args[0], dict):
        raise ProviderError(-32602, "expected an object parameter")
    return args[0]


def _chain_id(value: Any) -> int:
    if not isinstance(value, str) or not value.startswith("0x") or not is_hex(value):
        raise ProviderError(-32602, f"chainId must be a 0x-prefixed hex string, not {value!r}")
    return int(value, 16)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.startswith("0x") and is_hex(value):
        return int(value, 16)
    raise ProviderError(-32602, f"expected a hex quantity, not {value!r}")


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()
