"""OpenZeppelin's ``StandardMerkleTree``, in Python, byte for byte.

Same leaf hash (``keccak256(keccak256(abi.encode(values)))``), same node hash
(``keccak256`` of the two children sorted), same layout (a complete binary tree in an
array, leaves at the end in reverse order), the same default leaf sorting (by hash,
stable) and the same JSON dump (``"standard-v1"``), so a tree built here loads in
``@openzeppelin/merkle-tree`` and the other way round; proofs verify with OpenZeppelin's
``MerkleProof.verify`` on chain. Multiproofs are not implemented.

Rewards use the leaf encoding ``["address", "uint256"]`` = ``(account, cumulativeAmount)``;
:func:`rewards_tree` builds that tree from a mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from shotbank.chain.errors import MerkleError

__all__ = [
    "REWARD_LEAF_ENCODING",
    "StandardMerkleTree",
    "node_hash",
    "process_proof",
    "rewards_tree",
    "standard_leaf_hash",
]

#: Leaf encoding of the rewards tree (decision record 0001).
REWARD_LEAF_ENCODING: Final = ("address", "uint256")
#: Largest number of leaves accepted in one tree (memory bound; 2**20 leaves ~ 64 MiB).
MAX_LEAVES: Final = 1 << 20
_FORMAT: Final = "standard-v1"
_INT_TYPE = re.compile(r"^(u?)int(\d*)$")
_BYTES_N = re.compile(r"^bytes(\d+)$")
_ARRAY = re.compile(r"^(.*)\[(\d*)\]$")


def _to_hex(value: bytes) -> str:
    return "0x" + value.hex()


def _from_hex32(value: str) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", value):
        raise MerkleError(f"not a 32-byte hex string: {value!r}")
    return bytes.fromhex(value[2:])


def _normalise(abi_type: str, value: Any) -> Any:
    """Turn a JSON/JS-style value (decimal strings, hex strings) into what eth-abi encodes."""
    array = _ARRAY.match(abi_type)
    if array:
        if not isinstance(value, list | tuple):
            raise MerkleError(f"{abi_type} needs a list, got {value!r}")
        length = array.group(2)
        if length and int(length) != len(value):
            raise MerkleError(f"{abi_type} needs {length} items, got {len(value)}")
        return [_normalise(array.group(1), item) for item in value]
    integer = _INT_TYPE.match(abi_type)
    if integer:
        if isinstance(value, bool):
            raise MerkleError(f"{abi_type} cannot take a boolean")
        if isinstance(value, str):
            try:
                return int(value, 0) if value.lower().startswith(("0x", "-0x")) else int(value)
            except ValueError:
                raise MerkleError(f"{abi_type}: not an integer: {value!r}") from None
        if isinstance(value, int):
            return value
        raise MerkleError(f"{abi_type}: not an integer: {value!r}")
    if abi_type == "address":
        if not isinstance(value, str) or not is_address(value):
            raise MerkleError(f"not an address: {value!r}")
        return to_checksum_address(value)
    if abi_type == "bytes" or _BYTES_N.match(abi_type):
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, str) and re.fullmatch(r"0x([0-9a-fA-F]{2})*", value):
            return bytes.fromhex(value[2:])
        raise MerkleError(f"{abi_type}: not hex bytes: {value!r}")
    if abi_type == "bool":
        if not isinstance(value, bool):
            raise MerkleError(f"bool: not a boolean: {value!r}")
        return value
    if abi_type == "string":
        if not isinstance(value, str):
            raise MerkleError(f"string: not a string: {value!r}")
        return value
    raise MerkleError(f"unsupported leaf type {abi_type!r}")


def _jsonable(abi_type: str, value: Any) -> Any:
    """Inverse of :func:`_normalise` for dumps: big integers as decimal strings, bytes as hex."""
    array = _ARRAY.match(abi_type)
    if array:
        return [_jsonable(array.group(1), item) for item in value]
    if _INT_TYPE.match(abi_type):
        return str(value)
    if isinstance(value, bytes):
        return _to_hex(value)
    return value


def standard_leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    """``keccak256(keccak256(abi.encode(value)))`` — OpenZeppelin's standard leaf."""
    if len(value) != len(leaf_encoding):
        raise MerkleError(f"value has {len(value)} fields, the encoding {len(leaf_encoding)}")
    normalised = [_normalise(t, v) for t, v in zip(leaf_encoding, value, strict=True)]
    try:
        encoded = abi_encode(list(leaf_encoding), normalised)
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:
        raise MerkleError(f"cannot ABI-encode {value!r} as {list(leaf_encoding)}: {exc}") from exc
    return keccak(keccak(encoded))


def node_hash(a: bytes, b: bytes) -> bytes:
    """Hash of an inner node: ``keccak256`` of its two children in ascending order."""
    return keccak(a + b if a <= b else b + a)


def process_proof(leaf: bytes, proof: Sequence[str | bytes]) -> bytes:
    """Fold ``proof`` into ``leaf`` as ``MerkleProof.processProof`` does; returns the root."""
    computed = leaf
    for sibling in proof:
        sibling_bytes = _from_hex32(sibling) if isinstance(sibling, str) else sibling
        if len(sibling_bytes) != 32:
            raise MerkleError("proof elements must be 32 bytes")
        computed = node_hash(computed, sibling_bytes)
    return computed


class StandardMerkleTree:
    """A Merkle tree over ABI-encoded values, compatible with ``@openzeppelin/merkle-tree``.

    Build one with :meth:`of` or :meth:`load`. ``root`` and proofs are lower-case
    ``0x`` hex strings, as the JavaScript library returns them.
    """

    __slots__ = ("_hash_lookup", "_leaf_encoding", "_tree", "_values")

    def __init__(
        self,
        tree: Sequence[bytes],
        values: Sequence[tuple[tuple[Any, ...], int]],
        leaf_encoding: Sequence[str],
    ) -> None:
        """Low-level constructor; prefer :meth:`of` or :meth:`load` (which validate)."""
        self._tree = list(tree)
        self._values = list(values)
        self._leaf_encoding = tuple(leaf_encoding)
        # Later values win for duplicate leaves, as in the JS ``hashLookup``.
        self._hash_lookup = {self._tree[idx]: i for i, (_, idx) in enumerate(self._values)}

    @classmethod
    def of(
        cls,
        values: Sequence[Sequence[Any]],
        leaf_encoding: Sequence[str],
        *,
        sort_leaves: bool = True,
    ) -> StandardMerkleTree:
        """Build the tree of ``values`` (each a sequence matching ``leaf_encoding``)."""
        if not values:
            raise MerkleError("a Merkle tree needs at least one value")
        if len(values) > MAX_LEAVES:
            raise MerkleError(f"more than {MAX_LEAVES} values")
        encoding = tuple(leaf_encoding)
        normalised: list[tuple[Any, ...]] = []
        for value in values:
            if len(value) != len(encoding):
                raise MerkleError(f"value {value!r} does not match the encoding {encoding}")
            normalised.append(tuple(_normalise(t, v) for t, v in zip(encoding, value, strict=True)))
        hashed = [(standard_leaf_hash(encoding, value), i) for i, value in enumerate(normalised)]
        if sort_leaves:
            hashed.sort(key=lambda item: item[0])  # stable, like Array.prototype.sort
        tree = _make_tree([h for h, _ in hashed])
        tree_index = [0] * len(normalised)
        for leaf_index, (_, value_index) in enumerate(hashed):
            tree_index[value_index] = len(tree) - 1 - leaf_index
        return cls(tree, list(zip(normalised, tree_index, strict=True)), encoding)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Load a ``"standard-v1"`` dump (from :meth:`dump` or the JS library) and validate it."""
        if data.get("format") != _FORMAT:
            raise MerkleError(f"unknown format {data.get('format')!r}")
        encoding = data.get("leafEncoding")
        tree_hex = data.get("tree")
        raw_values = data.get("values")
        if not isinstance(encoding, list) or not all(isinstance(t, str) for t in encoding):
            raise MerkleError("expected a leaf encoding")
        if not isinstance(tree_hex, list) or not isinstance(raw_values, list):
            raise MerkleError("expected 'tree' and 'values' lists")
        if len(tree_hex) > 2 * MAX_LEAVES:
            raise MerkleError("tree too large")
        tree = [_from_hex32(node) for node in tree_hex]
        values: list[tuple[tuple[Any, ...], int]] = []
        for entry in raw_values:
            if not isinstance(entry, Mapping):
                raise MerkleError(f"bad value entry {entry!r}")
            value, index = entry.get("value"), entry.get("treeIndex")
            if not isinstance(value, list) or len(value) != len(encoding):
                raise MerkleError(f"value {value!r} does not match {encoding}")
            if not isinstance(index, int) or isinstance(index, bool):
                raise MerkleError(f"bad tree index {index!r}")
            normalised = tuple(_normalise(t, v) for t, v in zip(encoding, value, strict=True))
            values.append((normalised, index))
        loaded = cls(tree, values, encoding)
        loaded.validate()
        return loaded

    def dump(self) -> dict[str, Any]:
        """The tree in OpenZeppelin's JSON format (integers as decimal strings)."""
        return {
            "format": _FORMAT,
            "leafEncoding": list(self._leaf_encoding),
            "tree": [_to_hex(node) for node in self._tree],
            "values": [
                {
                    "value": [
                        _jsonable(t, v) for t, v in zip(self._leaf_encoding, value, strict=True)
                    ],
                    "treeIndex": index,
                }
                for value, index in self._values
            ],
        }

    @property
    def root(self) -> str:
        """The root as a lower-case ``0x`` hex string."""
        return _to_hex(self._tree[0])

    @property
    def leaf_encoding(self) -> tuple[str, ...]:
        """ABI types of the fields of each value."""
        return self._leaf_encoding

    def __len__(self) -> int:
        """Number of values (leaves)."""
        return len(self._values)

    def at(self, index: int) -> tuple[Any, ...]:
        """The value at position ``index`` of the original input order."""
        return self._values[index][0]

    def entries(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """``(index, value)`` pairs in the original input order."""
        for i, (value, _) in enumerate(self._values):
            yield i, value

    def leaf_hash(self, value: Sequence[Any]) -> str:
        """The leaf hash of ``value`` under this tree's encoding."""
        return _to_hex(standard_leaf_hash(self._leaf_encoding, value))

    def _value_index(self, leaf: int | Sequence[Any]) -> int:
        if isinstance(leaf, int):
            if not 0 <= leaf < len(self._values):
                raise MerkleError("index out of bounds")
            return leaf
        found = self._hash_lookup.get(standard_leaf_hash(self._leaf_encoding, leaf))
        if found is None:
            raise MerkleError("leaf is not in tree")
        return found

    def get_proof(self, leaf: int | Sequence[Any]) -> list[str]:
        """Proof for the value at ``leaf`` (an index) or equal to ``leaf`` (a value)."""
        value_index = self._value_index(leaf)
        value, tree_index = self._values[value_index]
        leaf_hash = standard_leaf_hash(self._leaf_encoding, value)
        if self._tree[tree_index] != leaf_hash:
            raise MerkleError("merkle tree does not contain the expected value")
        proof: list[str] = []
        index = tree_index
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            proof.append(_to_hex(self._tree[sibling]))
            index = (index - 1) // 2
        if process_proof(leaf_hash, proof) != self._tree[0]:
            raise MerkleError("unable to prove value")
        return proof

    def verify(self, leaf: int | Sequence[Any], proof: Sequence[str | bytes]) -> bool:
        """Whether ``proof`` proves ``leaf`` (an index or a value) against this root."""
        value = self._values[self._value_index(leaf)][0] if isinstance(leaf, int) else leaf
        leaf_hash = standard_leaf_hash(self._leaf_encoding, value)
        return process_proof(leaf_hash, proof) == self._tree[0]

    @staticmethod
    def verify_proof(
        root: str | bytes,
        leaf_encoding: Sequence[str],
        value: Sequence[Any],
        proof: Sequence[str | bytes],
    ) -> bool:
        """Whether ``proof`` proves ``value`` against ``root``, without a tree at hand."""
        root_bytes = _from_hex32(root) if isinstance(root, str) else root
        return process_proof(standard_leaf_hash(leaf_encoding, value), proof) == root_bytes

    def validate(self) -> None:
        """Check every value sits at its leaf and every inner node hashes its children."""
        if not self._tree:
            raise MerkleError("empty tree")
        n = len(self._tree)
        if n % 2 == 0:
            raise MerkleError("a complete tree has an odd number of nodes")
        for value, index in self._values:
            if not (n // 2 <= index < n):
                raise MerkleError(f"tree index {index} is not a leaf")
            if self._tree[index] != standard_leaf_hash(self._leaf_encoding, value):
                raise MerkleError("merkle tree does not contain the expected value")
        for i in range(n // 2):
            if self._tree[i] != node_hash(self._tree[2 * i + 1], self._tree[2 * i + 2]):
                raise MerkleError("merkle tree is invalid")

    def render(self) -> str:
        """A text drawing of the tree (same as the JS ``render()``)."""
        lines: list[str] = []
        stack: list[tuple[int, list[int]]] = [(0, [])]
        while stack:
            i, path = stack.pop()
            prefix = "".join(["   ", "│  "][p] for p in path[:-1])
            prefix += "".join(["└─ ", "├─ "][p] for p in path[-1:])
            lines.append(f"{prefix}{i}) {_to_hex(self._tree[i])}")
            if 2 * i + 2 < len(self._tree):
                stack.append((2 * i + 2, [*path, 0]))
                stack.append((2 * i + 1, [*path, 1]))
        return "\n".join(lines)


def _make_tree(leaves: Sequence[bytes]) -> list[bytes]:
    size = 2 * len(leaves) - 1
    tree: list[bytes] = [b""] * size
    for i, leaf in enumerate(leaves):
        tree[size - 1 - i] = leaf
    for i in range(size - 1 - len(leaves), -1, -1):
        tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
    return tree


def rewards_tree(cumulative: Mapping[str, int]) -> StandardMerkleTree:
    """The rewards tree: one leaf ``(account, cumulativeAmount)`` per account.

    Values are laid out in ascending address order so that the dump is deterministic;
    the root does not depend on the order (leaves are sorted by hash).
    """
    if not cumulative:
        raise MerkleError("a rewards tree needs at least one account")
    checksummed: dict[str, int] = {}
    for account, amount in cumulative.items():
        if not is_address(account):
            raise MerkleError(f"not an address: {account!r}")
        key = to_checksum_address(account)
        if key in checksummed:
            raise MerkleError(f"account {key} appears twice")
        if not 0 <= amount < 2**256:
            raise MerkleError(f"amount for {key} is not a uint256")
        checksummed[key] = amount
    ordered = sorted(checksummed.items(), key=lambda item: int(item[0], 16))
    return StandardMerkleTree.of([[a, v] for a, v in ordered], REWARD_LEAF_ENCODING)
