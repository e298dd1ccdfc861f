"""The signed form of a report: a :class:`~scoring.report.ClipScores` as an EIP-712
``ScoreReport`` message.

One function builds the message from a lease and a verdict, so that the validator node
(which signs it) and the backend (which rebuilds it to recover the signer) cannot drift
apart: both call :func:`score_report_message`. The mapping is the table in
``docs/api/validator.md`` ("Reports"):

- ``leaseId``, ``clipId``, ``contentCid``, ``annotationHash``, ``deadline``: the lease's;
- ``outcome``: 0 scored, 1 failed;
- ``scene``, ``lighting``, ``camera``, ``audio``, ``quality``, ``passThreshold``: basis
  points (:func:`~scoring.report.to_bps`; 65535 = not scored);
- ``flags``: :func:`~scoring.report.flags_mask` of the flags raised;
- ``model``, ``pretrained`` (tag or ``""``), ``weightsHash`` (``0x`` + SHA-256),
  ``preprocessing``: the :class:`~scoring.report.ModelIdentity`;
- ``detailsHash``: :meth:`ClipScores.details_hash` (keccak256 of the canonical JSON of
  the whole verdict), so reasons, measures and the embedding are signed too.

Only pydantic, the report types and the SDK's EIP-712 module are imported (no torch).
"""

from __future__ import annotations

from typing import Final

from scoring.report import ClipScores, Component, Outcome, flags_mask, to_bps
from shotbank.chain.eip712 import ScoreReport

__all__ = ["OUTCOME_CODES", "score_report_message"]

#: ``outcome`` as a ``uint8`` in the signed message.
OUTCOME_CODES: Final[dict[Outcome, int]] = {Outcome.SCORED: 0, Outcome.FAILED: 1}


def score_report_message(
    *,
    lease_id: str,
    clip_id: str,
    content_cid: str,
    annotation_hash: str,
    scores: ClipScores,
    deadline: int,
) -> ScoreReport:
    """The ``ScoreReport`` a validator signs for ``scores`` on the leased clip.

    Raises :class:`pydantic.ValidationError` when a lease field is out of the message's
    bounds (an id that is not 32 hex characters, a hash that is not bytes32).
    """
    model = scores.model
    return ScoreReport(
        lease_id=lease_id,
        clip_id=clip_id,
        content_cid=content_cid,
        annotation_hash=annotation_hash,
        outcome=OUTCOME_CODES[scores.outcome],
        scene=to_bps(scores.value(Component.SCENE)),
        lighting=to_bps(scores.value(Component.LIGHTING)),
        camera=to_bps(scores.value(Component.CAMERA)),
        audio=to_bps(scores.value(Component.AUDIO)),
        quality=to_bps(scores.quality),
        pass_threshold=to_bps(scores.pass_threshold),
        flags=flags_mask(scores.raised()),
        model=model.model,
        pretrained=model.tag or "",
        weights_hash="0x" + model.weights_sha256,
        preprocessing=model.preprocessing,
        details_hash=scores.details_hash(),
        deadline=deadline,
    )
