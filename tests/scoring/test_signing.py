"""``scoring.signing``: a verdict becomes the ``ScoreReport`` message the node signs and the
backend rebuilds, field by field as ``docs/api/validator.md`` maps them."""

from __future__ import annotations

import pytest
from eth_account import Account
from pydantic import ValidationError

from scoring.report import (
    NOT_SCORED_BPS,
    ClipScores,
    Component,
    ComponentScore,
    Flag,
    FlagResult,
    ModelIdentity,
    Outcome,
    Reason,
)
from scoring.signing import score_report_message
from shotbank.chain.eip712 import ScoreReport, recover_score_report_signer, sign_score_report

MODEL = ModelIdentity(
    model="shotbank-tiny",
    tag="synthetic-v1",
    weights_sha256="ab" * 32,
    preprocessing="1-0123456789ab",
)
LEASE_ID, CLIP_ID = "1" * 32, "2" * 32
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
ANNOTATION_HASH = "0x" + "3" * 64
DEADLINE = 1_795_168_200
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def message(
    scores: ClipScores, *, lease_id: str = LEASE_ID, annotation_hash: str = ANNOTATION_HASH
) -> ScoreReport:
    """The message for ``scores`` on the test lease."""
    return score_report_message(
        lease_id=lease_id,
        clip_id=CLIP_ID,
        content_cid=CID,
        annotation_hash=annotation_hash,
        scores=scores,
        deadline=DEADLINE,
    )


def scored() -> ClipScores:
    return ClipScores(
        scores={
            Component.SCENE: ComponentScore(value=0.81234),
            Component.CAMERA: ComponentScore(
                value=0.1,
                reasons=(
                    Reason(
                        code="camera.direction_mismatch",
                        message="camera movement declared pan-left, measured pan-right",
                    ),
                ),
            ),
            Component.AUDIO: ComponentScore(value=None),
        },
        flags=(
            FlagResult(flag=Flag.FROZEN, reason=Reason(code="junk.frozen", message="frozen")),
            FlagResult(flag=Flag.DUPLICATE, reason=Reason(code="junk.duplicate", message="dup")),
        ),
        quality=0.42,
        pass_threshold=0.55,
        passed=False,
        model=MODEL,
    )


def test_every_signed_field_comes_from_the_lease_or_the_verdict() -> None:
    scores = scored()
    signed = message(scores)
    assert signed.message_json() == {
        "leaseId": LEASE_ID,
        "clipId": CLIP_ID,
        "contentCid": CID,
        "annotationHash": ANNOTATION_HASH,
        "outcome": 0,
        "scene": 8123,
        "lighting": NOT_SCORED_BPS,  # absent
        "camera": 1000,
        "audio": NOT_SCORED_BPS,  # not scorable
        "quality": 4200,
        "passThreshold": 5500,
        "flags": (1 << 1) | (1 << 5),
        "model": "shotbank-tiny",
        "pretrained": "synthetic-v1",
        "weightsHash": "0x" + "ab" * 32,
        "preprocessing": "1-0123456789ab",
        "detailsHash": scores.details_hash(),
        "deadline": DEADLINE,
    }


def test_a_failed_verdict_and_an_unregistered_model_sign_as_such() -> None:
    failed = ClipScores(
        outcome=Outcome.FAILED,
        reasons=(Reason(code="scoring.media.undecodable", message="cannot be decoded"),),
        pass_threshold=0.5,
        passed=False,
        model=MODEL.model_copy(update={"tag": None}),
    )
    signed = message(failed)
    assert (signed.outcome, signed.quality, signed.flags) == (1, NOT_SCORED_BPS, 0)
    assert signed.pretrained == ""


def test_a_changed_reason_changes_what_is_signed() -> None:
    # Reasons are not numbers in the message: they reach it through detailsHash.
    account = Account.create()
    scores = scored()
    signature = sign_score_report(
        account,
        message(scores),
        chain_id=31337,
        verifying_contract=REGISTRY,
    )
    reworded = scores.model_copy(
        update={
            "scores": {
                **scores.scores,
                Component.CAMERA: ComponentScore(
                    value=0.1, reasons=(Reason(code="camera.matched", message="as declared"),)
                ),
            }
        }
    )
    honest = recover_score_report_signer(
        message(scores),
        signature,
        chain_id=31337,
        verifying_contract=REGISTRY,
    )
    edited = recover_score_report_signer(
        message(reworded),
        signature,
        chain_id=31337,
        verifying_contract=REGISTRY,
    )
    assert honest == account.address
    assert edited != account.address


def test_lease_fields_outside_the_message_bounds_are_refused() -> None:
    with pytest.raises(ValidationError):
        message(scored(), annotation_hash="0x1234")
    with pytest.raises(ValidationError):
        message(scored(), lease_id="not-an-id")
