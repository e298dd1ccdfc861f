"""The node's scoring engine: the verified model, the duplicate index, the pipeline.

:func:`build_engine` loads the configured model with its weights pinned by SHA-256
(:func:`scoring.models.load_model` refuses anything else), looks up the model's profile,
opens the near-duplicate index kept in the state directory, and starts the pipeline of
``scoring/pipeline.py``: decoding in ``workers`` processes, inference batched across
clips (:class:`~scoring.pipeline.ScoringPipeline`), or the same on a Ray cluster
(:class:`~scoring.pipeline.RayScoringPipeline`, ``ray_address``), whose actors load
the model themselves from a :class:`~scoring.pipeline.ScorerSpec` naming the same
verified weights.

The duplicate index holds the embeddings of clips the network accepted, as the backend
serves them (``GET /validator/embeddings``, under this model's weights hash).
:meth:`Engine.sync_embeddings` adds the ones accepted since the saved cursor, saves the
index (atomically) and then the cursor: a crash in between only means the next sync
adds a few clips again, which the index ignores. A damaged index file is rebuilt from
the backend from the start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.dedup import DuplicateIndex, decode_embedding
from scoring.models import load_model
from scoring.node.client import MAX_EMBEDDINGS_PAGE, ValidatorClient
from scoring.node.config import NodeSettings
from scoring.node.state import NodeState
from scoring.pipeline import RayScoringPipeline, ScorerSpec, ScoringJob, ScoringPipeline
from scoring.profiles import profile_for
from scoring.report import ClipScores, ModelIdentity
from scoring.scorer import Scorer
from shotbank.annotation import Annotation

__all__ = ["Engine", "build_engine"]

log = logging.getLogger("scoring.node")

#: Most pages of embeddings fetched in one sync (the rest comes with the next one).
_MAX_SYNC_PAGES: Final = 1000

Vectors = list[tuple[str, npt.NDArray[np.float32]]]


class Engine:
    """The pipeline the node feeds, and the duplicate index its scorer(s) search.

    Keys are lease ids; a verdict comes back as :class:`ClipScores`, or as the exception
    the scorer failed with (a bug, a missing file: never bad media, which gives a
    ``failed`` verdict), so the node returns that lease instead of signing.
    """

    def __init__(
        self,
        pipeline: ScoringPipeline | RayScoringPipeline,
        *,
        index: DuplicateIndex,
        index_path: Path,
    ) -> None:
        """Feed ``pipeline``; ``index`` (saved at ``index_path``) is the local scorer's, or
        the Ray actors' copy source."""
        self.pipeline = pipeline
        self.index = index
        self.index_path = index_path

    @property
    def identity(self) -> ModelIdentity:
        """The model every verdict is made with."""
        return self.pipeline.identity

    @property
    def pending(self) -> int:
        """Clips submitted whose verdict :meth:`poll` has not returned yet."""
        return self.pipeline.pending

    def submit(self, key: str, path: Path, annotation: Annotation, *, clip_id: str) -> None:
        """Queue one clip (``clip_id`` keeps it out of its own duplicate search)."""
        self.pipeline.submit(ScoringJob(key=key, path=path, annotation=annotation, clip_id=clip_id))

    def poll(self, timeout: float) -> list[tuple[str, ClipScores | BaseException]]:
        """The verdicts ready now, waiting up to ``timeout`` for the first."""
        return [(str(scored.job.key), scored.result) for scored in self.pipeline.poll(timeout)]

    def close(self) -> list[str]:
        """Stop at once (decodes under way are abandoned); the keys never finished."""
        return [str(job.key) for job in self.pipeline.close(cancel_pending=True)]

    # --- duplicate index -----------------------------------------------------------------

    def sync_embeddings(self, client: ValidatorClient, state: NodeState) -> int:
        """Add the clips accepted since the last sync to the index; how many were new."""
        weights = self.identity.weights_sha256
        cursor_name = _cursor_name(weights)
        cursor = state.cursor(cursor_name)
        added = 0
        for _ in range(_MAX_SYNC_PAGES):
            page = client.embeddings(
                weights_sha256=weights, after=cursor, limit=MAX_EMBEDDINGS_PAGE
            )
            vectors: Vectors = []
            for item in page.items:
                try:
                    vectors.append((item.clip_id, decode_embedding(item.embedding, self.index.dim)))
                except ValueError as exc:  # another validator's bad vector: not ours to keep
                    log.warning("embedding of clip %s skipped: %s", item.clip_id, exc)
            if vectors:
                added += self._add(vectors)
            if page.next_cursor is not None and page.next_cursor != cursor:
                cursor = page.next_cursor
                state.set_cursor(cursor_name, cursor)
            if not page.has_more or not page.items:
                break
        return added

    def _add(self, vectors: Vectors) -> int:
        added = self.index.add_many(vectors)
        if isinstance(self.pipeline, RayScoringPipeline):
            self.pipeline.add_duplicates(vectors)
        self.index.save(self.index_path)
        return added


def _cursor_name(weights_sha256: str) -> str:
    return f"embeddings:{weights_sha256}"


def _open_index(
    path: Path, fresh: DuplicateIndex, state: NodeState, weights: str
) -> DuplicateIndex:
    if path.exists():
        try:
            index = DuplicateIndex.load(path)
        except (ValueError, OSError) as exc:
            log.warning("the duplicate index %s is damaged (%s); rebuilding it", path, exc)
        else:
            if index.dim == fresh.dim:
                return index
            log.warning("the duplicate index %s holds %d-d vectors; rebuilding it", path, index.dim)
    # A new index is filled from the start, whatever the cursor said.
    state.set_cursor(_cursor_name(weights), None)
    fresh.save(path)
    return fresh


def build_engine(settings: NodeSettings, state: NodeState) -> Engine:
    """The engine for ``settings``: verified model, its profile, the duplicate index.

    Raises the :class:`scoring.errors.ModelError` family (tampered or unknown weights, no
    such device) and :class:`scoring.errors.UnknownProfileError` (a model without
    thresholds) before anything else happens. The index is brought up to date by the
    node once it has signed in (:meth:`Engine.sync_embeddings`).
    """
    model = load_model(
        settings.model,
        settings.weights_source,
        device=settings.device,
        precision=settings.precision,
        weights_dirs=settings.weights_dirs,
        expected_sha256=settings.weights_sha256,
    )
    profile = profile_for(model.identity)
    weights = model.identity.weights_sha256
    index_path = state.index_path(model.identity.model, weights)
    index = _open_index(index_path, DuplicateIndex.for_profile(profile), state, weights)
    pipeline: ScoringPipeline | RayScoringPipeline
    if settings.ray_address is not None:
        spec = ScorerSpec.model_validate(
            {
                "model": settings.model,
                "pretrained": str(settings.weights_source),
                # The actors verify the very file this node verified, wherever they load it.
                "expected_sha256": weights,
                "weights_dirs": [str(d) for d in settings.weights_dirs],
                "device": settings.device,
                "precision": settings.precision,
                "duplicates_path": str(index_path),
            }
        )
        pipeline = RayScoringPipeline(
            spec, address=settings.ray_address, batch_clips=settings.batch_size
        )
    else:
        scorer = Scorer(model, profile, duplicates=index)
        pipeline = ScoringPipeline(
            scorer, workers=settings.workers, batch_clips=settings.batch_size, worker_nice=5
        )
    return Engine(pipeline, index=index, index_path=index_path)
