"""EIP-712 typed data: epoch roots and score reports signed by validators.

The type definitions are not written here: they are read from ``eip712_types.json``
(shipped beside this module), the single source of truth that the contract tests read
too. The domain is ``{name, version, chainId, verifyingContract}`` where the JSON names
the *contract* that verifies (``"ValidatorRegistry"``) and the caller supplies its
address and the chain id.

Two messages are defined:

- ``EpochRoot``: the Merkle root of cumulative earnings, co-signed by validators and
  verified on chain (``ValidatorRegistry.verifyEpochRootSignatures``);
- ``ScoreReport``: one validator's verdict on one leased clip, verified off chain by the
  backend (``docs/api/validator.md``). Its domain still names the ValidatorRegistry, so a
  report is bound to one deployment on one chain.

Signatures are 65 bytes ``r || s || v`` with ``v`` in {27, 28} and low ``s`` (what
OpenZeppelin's ``ECDSA.recover`` accepts); a bundle lists signers strictly ascending.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Annotated, Any, Final

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from shotbank.chain.deployments import ChecksumAddressStr
from shotbank.chain.errors import ChainConfigError, SignatureError

__all__ = [
    "SECP256K1_HALF_N",
    "EpochRoot",
    "EpochRootSignature",
    "ScoreReport",
    "TypedDataSpec",
    "bundle_signatures",
    "epoch_root_digest",
    "epoch_root_typed_data",
    "load_typed_data_spec",
    "recover_epoch_root_signer",
    "recover_score_report_signer",
    "score_report_digest",
    "score_report_typed_data",
    "sign_epoch_root",
    "sign_score_report",
    "type_hash",
]

_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: Largest ``s`` OpenZeppelin's ECDSA accepts (signature malleability guard).
SECP256K1_HALF_N: Final = _SECP256K1_N // 2
_BYTES32_HEX: Final = r"^0x[0-9a-fA-F]{64}$"


class _Field(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\[[0-9]*\])*$")


class _Domain(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    name: str
    version: str
    verifying_contract: str = Field(alias="verifyingContract")


class TypedDataSpec(BaseModel):
    """One primary type from ``eip712_types.json``: its domain template and types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary_type: str
    domain: _Domain
    types: dict[str, tuple[_Field, ...]]

    def types_json(self) -> dict[str, list[dict[str, str]]]:
        """The ``types`` object as eth-account / EIP-712 JSON expects it."""
        return {
            name: [{"name": f.name, "type": f.type} for f in fields]
            for name, fields in self.types.items()
        }

    def domain_json(self, *, chain_id: int, verifying_contract: str) -> dict[str, Any]:
        """The domain with the chain id and the verifying contract's address filled in."""
        return {
            "name": self.domain.name,
            "version": self.domain.version,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(verifying_contract),
        }


@cache
def load_typed_data_spec(primary_type: str) -> TypedDataSpec:
    """Read the definition of ``primary_type`` from the shipped ``eip712_types.json``."""
    raw = resources.files("shotbank.chain").joinpath("eip712_types.json").read_text()
    document = json.loads(raw)
    entry = document.get(primary_type)
    if not isinstance(entry, dict):
        raise ChainConfigError(f"eip712_types.json has no type {primary_type!r}")
    try:
        spec = TypedDataSpec.model_validate({"primary_type": primary_type, **entry})
    except ValidationError as exc:
        raise ChainConfigError(f"eip712_types.json entry {primary_type!r}: {exc}") from exc
    if primary_type not in spec.types:
        raise ChainConfigError(f"eip712_types.json entry {primary_type!r} lacks its own type")
    return spec


def _base_type(type_name: str) -> str:
    return type_name.split("[", 1)[0]


def type_hash(primary_type: str) -> bytes:
    """``keccak256(encodeType(primary_type))`` as the Solidity ``TYPEHASH`` constant holds."""
    spec = load_typed_data_spec(primary_type)
    deps: set[str] = set()
    pending = [primary_type]
    while pending:
        current = pending.pop()
        for f in spec.types[current]:
            base = _base_type(f.type)
            if base in spec.types and base not in deps and base != primary_type:
                deps.add(base)
                pending.append(base)
    parts = []
    for name in [primary_type, *sorted(deps)]:
        fields = ",".join(f"{f.type} {f.name}" for f in spec.types[name])
        parts.append(f"{name}({fields})")
    return keccak(text="".join(parts))


class EpochRoot(BaseModel):
    """The message validators co-sign: the Merkle root of cumulative earnings for an epoch.

    ``cumulative_total`` is the sum of all cumulative amounts in the tree.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    epoch: int = Field(ge=0, lt=2**64)
    root: str = Field(pattern=_BYTES32_HEX)
    cumulative_total: int = Field(alias="cumulativeTotal", ge=0, lt=2**256)

    def message_json(self) -> dict[str, Any]:
        """The ``message`` part of the typed data (field names as in the JSON types)."""
        return {
            "epoch": self.epoch,
            "root": self.root.lower(),
            "cumulativeTotal": self.cumulative_total,
        }


class EpochRootSignature(BaseModel):
    """A validator's signature over an epoch root, with the recovered signer."""

    model_config = ConfigDict(frozen=True)

    signer: ChecksumAddressStr
    signature: bytes = Field(min_length=65, max_length=65)


def _typed_data(
    primary_type: str, message: dict[str, Any], *, chain_id: int, verifying_contract: str
) -> dict[str, Any]:
    spec = load_typed_data_spec(primary_type)
    return {
        "types": spec.types_json(),
        "primaryType": spec.primary_type,
        "domain": spec.domain_json(chain_id=chain_id, verifying_contract=verifying_contract),
        "message": message,
    }


def _digest(signable: SignableMessage) -> bytes:
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def _sign(account: LocalAccount, signable: SignableMessage) -> bytes:
    signature = bytes(account.sign_message(signable).signature)
    # eth-keys already signs with low s; folding a high s into its twin anyway keeps
    # every signature we hand out acceptable to _check_shape (and to OpenZeppelin).
    s = int.from_bytes(signature[32:64], "big")
    if s > SECP256K1_HALF_N:
        twin_v = 55 - signature[64]  # 27 <-> 28: the twin's R has the other parity
        signature = signature[:32] + (_SECP256K1_N - s).to_bytes(32, "big") + bytes([twin_v])
    _check_shape(signature)
    return signature


def _recover(signable: SignableMessage, signature: bytes) -> ChecksumAddress:
    _check_shape(signature)
    try:
        signer = Account.recover_message(signable, signature=signature)
    except Exception as exc:  # eth-keys raises several unrelated types for bad input
        raise SignatureError(f"cannot recover signer: {exc}") from exc
    return to_checksum_address(signer)


def epoch_root_typed_data(
    epoch_root: EpochRoot, *, chain_id: int, verifying_contract: str
) -> dict[str, Any]:
    """The complete EIP-712 document (``eth_signTypedData_v4`` input) for an epoch root.

    ``verifying_contract`` is the ValidatorRegistry's address on ``chain_id``.
    """
    return _typed_data(
        "EpochRoot",
        epoch_root.message_json(),
        chain_id=chain_id,
        verifying_contract=verifying_contract,
    )


def _signable(epoch_root: EpochRoot, chain_id: int, verifying_contract: str) -> SignableMessage:
    return encode_typed_data(
        full_message=epoch_root_typed_data(
            epoch_root, chain_id=chain_id, verifying_contract=verifying_contract
        )
    )


def epoch_root_digest(epoch_root: EpochRoot, *, chain_id: int, verifying_contract: str) -> bytes:
    """The 32-byte digest that is signed (``ValidatorRegistry.epochRootDigest`` on chain)."""
    return _digest(_signable(epoch_root, chain_id, verifying_contract))


def sign_epoch_root(
    account: LocalAccount, epoch_root: EpochRoot, *, chain_id: int, verifying_contract: str
) -> EpochRootSignature:
    """Sign ``epoch_root`` with ``account`` for the registry at ``verifying_contract``."""
    signature = _sign(account, _signable(epoch_root, chain_id, verifying_contract))
    return EpochRootSignature(signer=account.address, signature=signature)


def _check_shape(signature: bytes) -> None:
    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes, got {len(signature)}")
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > SECP256K1_HALF_N:
        raise SignatureError("signature has a high or zero s value (malleable form)")
    if signature[64] not in (27, 28):
        raise SignatureError(f"signature v must be 27 or 28, got {signature[64]}")


def recover_epoch_root_signer(
    epoch_root: EpochRoot, signature: bytes, *, chain_id: int, verifying_contract: str
) -> str:
    """The checksum address that produced ``signature`` over ``epoch_root``.

    Rejects what the contract rejects: wrong length, high ``s``, ``v`` not 27/28.
    """
    return str(_recover(_signable(epoch_root, chain_id, verifying_contract), bytes(signature)))


def bundle_signatures(
    epoch_root: EpochRoot,
    signatures: Iterable[bytes] | Mapping[ChecksumAddress, bytes] | Mapping[str, bytes],
    *,
    chain_id: int,
    verifying_contract: str,
) -> list[EpochRootSignature]:
    """Verify signatures over ``epoch_root`` and order them by signer, strictly ascending.

    ``signatures`` is either raw signatures or a mapping ``claimed signer -> signature``;
    with a mapping every recovered signer must equal its claimed address. Duplicate
    signers are an error (the contract requires strictly ascending signers).
    """
    claimed: list[tuple[str | None, bytes]]
    if isinstance(signatures, Mapping):
        claimed = [(to_checksum_address(k), bytes(v)) for k, v in signatures.items()]
    else:
        claimed = [(None, bytes(sig)) for sig in signatures]
    bundle: dict[int, EpochRootSignature] = {}
    for expected, signature in claimed:
        signer = recover_epoch_root_signer(
            epoch_root, signature, chain_id=chain_id, verifying_contract=verifying_contract
        )
        if expected is not None and signer != expected:
            raise SignatureError(f"signature claimed for {expected} was made by {signer}")
        key = int(signer, 16)
        if key in bundle:
            raise SignatureError(f"two signatures from {signer}")
        bundle[key] = EpochRootSignature(signer=signer, signature=signature)
    return [bundle[key] for key in sorted(bundle)]


# --- score reports -------------------------------------------------------------------

_UINT16_MAX: Final = 2**16 - 1
#: Largest basis-point score (1.0).
_BPS_MAX: Final = 10_000
#: The basis-point value that means "not scored" (``scoring.report.NOT_SCORED_BPS``).
_NOT_SCORED_BPS: Final = 65_535
#: Backend object ids (lease, clip): 16 random bytes as lowercase hex. One spelling only,
#: because a string is signed as its bytes and ``"AB.."`` would sign differently.
_ID_HEX: Final = r"^[0-9a-f]{32}$"
_MAX_CID_CHARS: Final = 128
_MAX_NAME_CHARS: Final = 100


def _basis_points(value: int) -> int:
    if value > _BPS_MAX and value != _NOT_SCORED_BPS:
        raise ValueError(f"{value} is neither a basis-point score (0..10000) nor 65535")
    return value


#: A score as basis points: 0..10000, or 65535 for "not scored".
_BasisPoints = Annotated[
    int, Field(strict=True, ge=0, le=_UINT16_MAX), AfterValidator(_basis_points)
]


class ScoreReport(BaseModel):
    """The ``ScoreReport`` message: one validator's verdict on one leased clip.

    Field names are snake_case here and camelCase (the EIP-712 names) as aliases; both
    are accepted. Values are exactly what is signed (``docs/api/validator.md``): scores
    as basis points (65535 = not scored), flags as a bit mask, the model identity, the
    keccak256 of the full verdict's canonical JSON as ``details_hash``, and the lease's
    ``deadline`` in unix seconds. Every bound of the EIP-712 type is enforced, plus the
    narrower ones of their meaning (ids, score ranges, string lengths).
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    lease_id: str = Field(alias="leaseId", pattern=_ID_HEX)
    clip_id: str = Field(alias="clipId", pattern=_ID_HEX)
    content_cid: str = Field(
        alias="contentCid", min_length=1, max_length=_MAX_CID_CHARS, pattern=r"^[A-Za-z0-9]+$"
    )
    annotation_hash: str = Field(alias="annotationHash", pattern=_BYTES32_HEX)
    outcome: int = Field(strict=True, ge=0, le=1)
    """0 scored, 1 failed (``scoring.report.Outcome``); a uint8 on the wire."""
    scene: _BasisPoints
    lighting: _BasisPoints
    camera: _BasisPoints
    audio: _BasisPoints
    quality: _BasisPoints
    pass_threshold: _BasisPoints = Field(alias="passThreshold")
    flags: int = Field(strict=True, ge=0, le=2**32 - 1)
    """Bit mask of the junk flags raised (``scoring.report.FLAG_BITS``)."""
    model: str = Field(min_length=1, max_length=_MAX_NAME_CHARS)
    pretrained: str = Field(max_length=_MAX_NAME_CHARS)
    """The registry tag of the weights, or ``""`` for a file outside the registry."""
    weights_hash: str = Field(alias="weightsHash", pattern=_BYTES32_HEX)
    """``0x`` + SHA-256 of the weights file."""
    preprocessing: str = Field(min_length=1, max_length=_MAX_NAME_CHARS)
    details_hash: str = Field(alias="detailsHash", pattern=_BYTES32_HEX)
    deadline: int = Field(strict=True, ge=0, le=2**64 - 1)

    def message_json(self) -> dict[str, Any]:
        """The ``message`` part of the typed data (field names as in the JSON types)."""
        return {
            "leaseId": self.lease_id,
            "clipId": self.clip_id,
            "contentCid": self.content_cid,
            "annotationHash": self.annotation_hash.lower(),
            "outcome": self.outcome,
            "scene": self.scene,
            "lighting": self.lighting,
            "camera": self.camera,
            "audio": self.audio,
            "quality": self.quality,
            "passThreshold": self.pass_threshold,
            "flags": self.flags,
            "model": self.model,
            "pretrained": self.pretrained,
            "weightsHash": self.weights_hash.lower(),
            "preprocessing": self.preprocessing,
            "detailsHash": self.details_hash.lower(),
            "deadline": self.deadline,
        }


def score_report_typed_data(
    report: ScoreReport, *, chain_id: int, verifying_contract: str
) -> dict[str, Any]:
    """The complete EIP-712 document (``eth_signTypedData_v4`` input) for a score report.

    ``verifying_contract`` is the ValidatorRegistry's address on ``chain_id``.
    """
    return _typed_data(
        "ScoreReport",
        report.message_json(),
        chain_id=chain_id,
        verifying_contract=verifying_contract,
    )


def _signable_report(
    report: ScoreReport, chain_id: int, verifying_contract: str
) -> SignableMessage:
    return encode_typed_data(
        full_message=score_report_typed_data(
            report, chain_id=chain_id, verifying_contract=verifying_contract
        )
    )


def score_report_digest(report: ScoreReport, *, chain_id: int, verifying_contract: str) -> bytes:
    """The 32-byte EIP-712 digest of ``report`` (what the signature signs)."""
    return _digest(_signable_report(report, chain_id, verifying_contract))


def sign_score_report(
    account: LocalAccount, report: ScoreReport, *, chain_id: int, verifying_contract: str
) -> bytes:
    """Sign ``report`` with ``account``: 65 bytes ``r || s || v``, low ``s``, ``v`` 27/28."""
    return _sign(account, _signable_report(report, chain_id, verifying_contract))


def recover_score_report_signer(
    report: ScoreReport, signature: bytes, *, chain_id: int, verifying_contract: str
) -> ChecksumAddress:
    """The checksum address that produced ``signature`` over ``report``.

    Raises :class:`SignatureError` for a signature that is not 65 bytes, has a high or
    zero ``s`` or a ``v`` other than 27/28, or does not recover at all. A well-formed
    signature over other data recovers to some other address: compare the result.
    """
    return _recover(_signable_report(report, chain_id, verifying_contract), bytes(signature))
