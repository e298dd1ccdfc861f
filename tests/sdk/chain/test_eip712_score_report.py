"""EIP-712 score reports: the message model's bounds, signing, recovery, and agreement
with an independent implementation (a hand-built hash, and viem in Node)."""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from pydantic import ValidationError

from scoring.report import FLAG_BITS, NOT_SCORED_BPS, Flag, flags_mask, to_bps
from shotbank.chain.eip712 import (
    SECP256K1_HALF_N,
    ScoreReport,
    load_typed_data_spec,
    recover_score_report_signer,
    score_report_digest,
    score_report_typed_data,
    sign_score_report,
    type_hash,
)
from shotbank.chain.errors import SignatureError

REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
CHAIN = 31337
N = SECP256K1_HALF_N * 2 + 1
VIEM_SCRIPT = Path(__file__).with_name("viem_typed_data.mjs")

FIELDS: dict[str, Any] = {
    "lease_id": "0123456789abcdef0123456789abcdef",
    "clip_id": "fedcba9876543210fedcba9876543210",
    "content_cid": "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    "annotation_hash": "0x" + "1f" * 32,
    "outcome": 0,
    "scene": to_bps(0.8123),
    "lighting": to_bps(None),
    "camera": 10_000,
    "audio": 0,
    "quality": to_bps(0.71),
    "pass_threshold": to_bps(0.55),
    "flags": flags_mask({Flag.FROZEN, Flag.BLUR}),
    "model": "shotbank-tiny",
    "pretrained": "synthetic-v1",
    "weights_hash": "0x" + "ab" * 32,
    "preprocessing": "1-0123456789ab",
    "details_hash": "0x" + "cd" * 32,
    "deadline": 1_795_168_200,
}
REPORT = ScoreReport(**FIELDS)

#: A different, still valid value for every field.
CHANGED: dict[str, Any] = {
    "lease_id": "0123456789abcdef0123456789abcdee",
    "clip_id": "fedcba9876543210fedcba9876543211",
    "content_cid": "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zz",
    "annotation_hash": "0x" + "1f" * 31 + "20",
    "outcome": 1,
    "scene": 8124,
    "lighting": 0,
    "camera": 9_999,
    "audio": NOT_SCORED_BPS,
    "quality": 7101,
    "pass_threshold": 5501,
    "flags": flags_mask({Flag.FROZEN}),
    "model": "ViT-B-32",
    "pretrained": "",
    "weights_hash": "0x" + "ab" * 31 + "ac",
    "preprocessing": "1-0123456789ac",
    "details_hash": "0x" + "cd" * 31 + "ce",
    "deadline": 1_795_168_201,
}


@pytest.fixture(scope="module")
def validator() -> LocalAccount:
    account: LocalAccount = Account.from_key(bytes([7]) * 32)
    return account


def sign(account: LocalAccount, report: ScoreReport = REPORT, **domain: Any) -> bytes:
    return sign_score_report(
        account,
        report,
        chain_id=domain.get("chain_id", CHAIN),
        verifying_contract=domain.get("verifying_contract", REGISTRY),
    )


def recover(signature: bytes, report: ScoreReport = REPORT, **domain: Any) -> str:
    return recover_score_report_signer(
        report,
        signature,
        chain_id=domain.get("chain_id", CHAIN),
        verifying_contract=domain.get("verifying_contract", REGISTRY),
    )


# --- the message and its type ----------------------------------------------------------


def test_message_carries_exactly_the_fields_of_the_shared_json_type() -> None:
    shared = json.loads(resources.files("shotbank.chain").joinpath("eip712_types.json").read_text())
    names = [field["name"] for field in shared["ScoreReport"]["types"]["ScoreReport"]]
    assert list(REPORT.message_json()) == names
    assert set(CHANGED) == set(ScoreReport.model_fields)


def test_type_hash_encodes_every_field_in_declared_order() -> None:
    encoded = (
        "ScoreReport(string leaseId,string clipId,string contentCid,bytes32 annotationHash,"
        "uint8 outcome,uint16 scene,uint16 lighting,uint16 camera,uint16 audio,uint16 quality,"
        "uint16 passThreshold,uint32 flags,string model,string pretrained,bytes32 weightsHash,"
        "string preprocessing,bytes32 detailsHash,uint64 deadline)"
    )
    assert type_hash("ScoreReport") == keccak(text=encoded)


def test_camel_case_aliases_and_snake_case_names_build_the_same_report() -> None:
    by_alias = ScoreReport.model_validate(REPORT.message_json())
    assert by_alias == REPORT
    assert REPORT.model_dump(by_alias=True) == REPORT.message_json()


def test_typed_data_fills_in_the_registry_domain_and_lowercases_hashes() -> None:
    shouting = REPORT.model_copy(update={"weights_hash": "0x" + "AB" * 32})
    document = score_report_typed_data(
        shouting, chain_id=CHAIN, verifying_contract=REGISTRY.lower()
    )
    assert document["primaryType"] == "ScoreReport"
    assert document["domain"] == {
        "name": "Shotbank",
        "version": "1",
        "chainId": CHAIN,
        "verifyingContract": REGISTRY,
    }
    assert document["message"]["weightsHash"] == "0x" + "ab" * 32
    assert score_report_digest(
        shouting, chain_id=CHAIN, verifying_contract=REGISTRY
    ) == score_report_digest(REPORT, chain_id=CHAIN, verifying_contract=REGISTRY)


def test_the_not_scored_value_is_the_scorers() -> None:
    assert NOT_SCORED_BPS == 65_535
    assert ScoreReport(**{**FIELDS, "scene": NOT_SCORED_BPS}).scene == NOT_SCORED_BPS
    every_flag = flags_mask(set(FLAG_BITS))
    assert ScoreReport(**{**FIELDS, "flags": every_flag}).flags == every_flag


# --- signing and recovery --------------------------------------------------------------


def test_signature_recovers_its_signer_and_has_the_contract_shape(
    validator: LocalAccount,
) -> None:
    signature = sign(validator)
    assert isinstance(signature, bytes)
    assert len(signature) == 65
    assert signature[64] in (27, 28)
    assert 0 < int.from_bytes(signature[32:64], "big") <= SECP256K1_HALF_N
    assert recover(signature) == validator.address


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_changing_any_signed_field_changes_the_recovered_signer(
    validator: LocalAccount, field: str
) -> None:
    signature = sign(validator)
    changed = ScoreReport(**{**FIELDS, field: CHANGED[field]})
    assert changed != REPORT
    assert recover(signature, changed) != validator.address


def test_a_report_signed_for_another_chain_or_registry_recovers_someone_else(
    validator: LocalAccount,
) -> None:
    assert recover(sign(validator, chain_id=1)) != validator.address
    other_registry = "0x" + "11" * 20
    assert recover(sign(validator, verifying_contract=other_registry)) != validator.address


def test_digest_matches_a_hand_built_eip712_hash() -> None:
    domain_type = (
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    separator = keccak(
        keccak(text=domain_type)
        + keccak(text="Shotbank")
        + keccak(text="1")
        + CHAIN.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(REGISTRY[2:])
    )
    spec = load_typed_data_spec("ScoreReport")
    message = REPORT.message_json()
    encoded = type_hash("ScoreReport")
    for field in spec.types["ScoreReport"]:
        value = message[field.name]
        if field.type == "string":
            encoded += keccak(text=value)
        elif field.type == "bytes32":
            encoded += bytes.fromhex(value[2:])
        else:
            assert field.type.startswith("uint")
            encoded += int(value).to_bytes(32, "big")
    expected = keccak(b"\x19\x01" + separator + keccak(encoded))
    assert score_report_digest(REPORT, chain_id=CHAIN, verifying_contract=REGISTRY) == expected


def run_viem(node_binary: Path, project_root: Path, request: dict[str, Any]) -> dict[str, str]:
    """Hash and sign with viem (the JS reference); integers travel as strings."""
    done = subprocess.run(
        [str(node_binary), str(VIEM_SCRIPT)],
        input=json.dumps(request, default=str).encode(),
        capture_output=True,
        cwd=project_root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    answer: dict[str, str] = json.loads(done.stdout)
    return answer


def test_digest_and_signature_equal_viems(
    validator: LocalAccount, node_binary: Path, project_root: Path
) -> None:
    # Extremes too: the largest uint64 deadline and uint32 mask, non-ASCII model text.
    report = ScoreReport(
        **{**FIELDS, "deadline": 2**64 - 1, "flags": 2**32 - 1, "model": "modèle-ü"}
    )
    document = score_report_typed_data(report, chain_id=CHAIN, verifying_contract=REGISTRY)
    for field in ("deadline", "flags", "scene", "outcome"):
        document["message"][field] = str(document["message"][field])
    answer = run_viem(
        node_binary,
        project_root,
        {"typedData": document, "privateKey": "0x" + validator.key.hex().removeprefix("0x")},
    )
    digest = score_report_digest(report, chain_id=CHAIN, verifying_contract=REGISTRY)
    assert answer["digest"] == "0x" + digest.hex()
    # Both sides sign deterministically (RFC 6979), so the bytes are equal, not just valid.
    ours = sign(validator, report)
    assert answer["signature"] == "0x" + ours.hex()
    assert recover(bytes.fromhex(answer["signature"][2:]), report) == validator.address


# --- refusals --------------------------------------------------------------------------


def test_high_s_short_long_and_bad_v_signatures_are_refused(validator: LocalAccount) -> None:
    signature = sign(validator)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    twin = r + (N - s).to_bytes(32, "big") + bytes([55 - v])
    with pytest.raises(SignatureError, match="high"):
        recover(twin)
    with pytest.raises(SignatureError, match="high or zero"):
        recover(r + bytes(32) + bytes([v]))
    with pytest.raises(SignatureError, match="65 bytes"):
        recover(signature[:64])
    with pytest.raises(SignatureError, match="65 bytes"):
        recover(signature + b"\x00")
    with pytest.raises(SignatureError, match="v must be"):
        recover(signature[:64] + b"\x01")
    with pytest.raises(SignatureError, match="cannot recover"):
        recover(bytes(32) + (1).to_bytes(32, "big") + b"\x1b")
    assert isinstance(SignatureError("x"), ValueError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lease_id", "0123456789ABCDEF0123456789ABCDEF"),
        ("lease_id", "0123456789abcdef"),
        ("clip_id", "g" * 32),
        ("content_cid", ""),
        ("content_cid", "b" * 129),
        ("content_cid", "bafk/../etc"),
        ("annotation_hash", "0x1234"),
        ("annotation_hash", "ab" * 32),
        ("outcome", 2),
        ("outcome", -1),
        ("outcome", True),
        ("scene", 10_001),
        ("lighting", 65_534),
        ("camera", 65_536),
        ("audio", -1),
        ("quality", "7100"),
        ("pass_threshold", 0.5),
        ("flags", 2**32),
        ("flags", -1),
        ("model", ""),
        ("model", "m" * 101),
        ("pretrained", "p" * 101),
        ("preprocessing", ""),
        ("preprocessing", "x" * 101),
        ("weights_hash", "0x" + "zz" * 32),
        ("details_hash", "0x" + "00" * 33),
        ("deadline", 2**64),
        ("deadline", -1),
        ("deadline", 1.5),
    ],
)
def test_out_of_range_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field.split("_")[0]):
        ScoreReport(**{**FIELDS, field: value})


def test_unknown_fields_are_refused_and_reports_are_immutable() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ScoreReport.model_validate({**FIELDS, "reward": 1})
    with pytest.raises(ValidationError, match="frozen"):
        REPORT.scene = 1  # type: ignore[misc]
