"""EIP-712 epoch roots: types from the shared JSON, signing, recovery, bundles."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from shotbank.chain.eip712 import (
    SECP256K1_HALF_N,
    EpochRoot,
    bundle_signatures,
    epoch_root_digest,
    epoch_root_typed_data,
    recover_epoch_root_signer,
    sign_epoch_root,
    type_hash,
)
from shotbank.chain.errors import SignatureError

REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
N = SECP256K1_HALF_N * 2 + 1
ROOT = EpochRoot(epoch=7, root="0x" + "ab" * 32, cumulative_total=10**24)


@pytest.fixture(scope="module")
def validators() -> list[LocalAccount]:
    return [Account.from_key(bytes([i]) * 32) for i in range(1, 6)]


def sign(account: LocalAccount, root: EpochRoot = ROOT, chain_id: int = 31337) -> bytes:
    return sign_epoch_root(account, root, chain_id=chain_id, verifying_contract=REGISTRY).signature


def test_type_hash_is_derived_from_the_shared_json() -> None:
    shared = json.loads(resources.files("shotbank.chain").joinpath("eip712_types.json").read_text())
    fields = shared["EpochRoot"]["types"]["EpochRoot"]
    encoded = "EpochRoot(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"
    assert encoded == "EpochRoot(uint64 epoch,bytes32 root,uint256 cumulativeTotal)"
    assert type_hash("EpochRoot") == keccak(text=encoded)


def test_typed_data_document_fills_in_the_domain() -> None:
    document = epoch_root_typed_data(ROOT, chain_id=31337, verifying_contract=REGISTRY.lower())
    assert document["domain"] == {
        "name": "Shotbank",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": REGISTRY,
    }
    assert document["primaryType"] == "EpochRoot"
    assert document["message"] == {"epoch": 7, "root": "0x" + "ab" * 32, "cumulativeTotal": 10**24}


def test_digest_matches_a_hand_built_eip712_hash() -> None:
    domain_type = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    separator = keccak(
        domain_type
        + keccak(text="Shotbank")
        + keccak(text="1")
        + (31337).to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(REGISTRY[2:])
    )
    struct = keccak(
        type_hash("EpochRoot")
        + (7).to_bytes(32, "big")
        + bytes.fromhex("ab" * 32)
        + (10**24).to_bytes(32, "big")
    )
    expected = keccak(b"\x19\x01" + separator + struct)
    assert epoch_root_digest(ROOT, chain_id=31337, verifying_contract=REGISTRY) == expected


def test_signature_recovers_its_signer_and_is_low_s(validators: list[LocalAccount]) -> None:
    signature = sign(validators[0])
    assert len(signature) == 65
    assert signature[64] in (27, 28)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_HALF_N
    assert (
        recover_epoch_root_signer(ROOT, signature, chain_id=31337, verifying_contract=REGISTRY)
        == validators[0].address
    )


def test_signature_for_another_domain_or_message_recovers_someone_else(
    validators: list[LocalAccount],
) -> None:
    signature = sign(validators[0], chain_id=1)
    assert (
        recover_epoch_root_signer(ROOT, signature, chain_id=31337, verifying_contract=REGISTRY)
        != validators[0].address
    )
    other = ROOT.model_copy(update={"cumulative_total": ROOT.cumulative_total + 1})
    assert (
        recover_epoch_root_signer(
            other, sign(validators[0]), chain_id=31337, verifying_contract=REGISTRY
        )
        != validators[0].address
    )


def test_high_s_twin_of_a_valid_signature_is_refused(validators: list[LocalAccount]) -> None:
    signature = sign(validators[0])
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    twin = r + (N - s).to_bytes(32, "big") + bytes([55 - v])
    with pytest.raises(SignatureError, match="high"):
        recover_epoch_root_signer(ROOT, twin, chain_id=31337, verifying_contract=REGISTRY)
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_epoch_root_signer(ROOT, signature[:64], chain_id=31337, verifying_contract=REGISTRY)
    with pytest.raises(SignatureError, match="v must be"):
        recover_epoch_root_signer(
            ROOT, signature[:64] + b"\x01", chain_id=31337, verifying_contract=REGISTRY
        )


def test_bundle_is_sorted_by_signer_ascending(validators: list[LocalAccount]) -> None:
    signatures = [sign(v) for v in validators]
    bundle = bundle_signatures(
        ROOT, reversed(signatures), chain_id=31337, verifying_contract=REGISTRY
    )
    signers = [int(entry.signer, 16) for entry in bundle]
    assert signers == sorted(signers)
    assert len(set(signers)) == len(validators)
    assert {entry.signer for entry in bundle} == {v.address for v in validators}


def test_bundle_refuses_duplicates_and_wrong_claims(validators: list[LocalAccount]) -> None:
    one = sign(validators[0])
    with pytest.raises(SignatureError, match="two signatures"):
        bundle_signatures(ROOT, [one, one], chain_id=31337, verifying_contract=REGISTRY)
    with pytest.raises(SignatureError, match="claimed"):
        bundle_signatures(
            ROOT, {validators[1].address: one}, chain_id=31337, verifying_contract=REGISTRY
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"epoch": -1, "root": "0x" + "00" * 32, "cumulative_total": 0},
        {"epoch": 2**64, "root": "0x" + "00" * 32, "cumulative_total": 0},
        {"epoch": 1, "root": "0x1234", "cumulative_total": 0},
        {"epoch": 1, "root": "0x" + "00" * 32, "cumulative_total": 2**256},
    ],
)
def test_out_of_range_epoch_roots_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        EpochRoot.model_validate(fields)
