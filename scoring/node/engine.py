"""The node's scoring engine: the verified model, its scorer, the duplicate index, the pipeline.

:func:`build_engine` loads the configured model with its weights pinned by SHA-256
(:func:`scoring.models.load_model` refuses anything else), looks up the model's profile,
opens the near-duplicate index kept in the state directory, and wraps the scorer in a
pipeline that decodes in worker processes and embeds in batches.

The duplicate index holds the embeddings of clips the network accepted, as the backend
serves them (``GET /validator/embeddings``, under this model's weights hash).
:meth:`Engine.sync_embeddings` adds the ones accepted since the saved cursor, saves the
index (atomically) and then the cursor: a crash in between only means the next sync adds
a few clips again, which the index ignores. A damaged index file is rebuilt from the
backend from the start.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Final

from scoring.dedup import DuplicateIndex, decode_embedding
from scoring.models import load_model
from scoring.node.client import MAX_EMBEDDINGS_PAGE, ValidatorClient
from scoring.node.config import NodeSettings
from scoring.node.state import NodeState
from scoring.profiles import profile_for
from scoring.report import ClipScores, ModelIdentity
from scoring.scorer import Scorer
from shotbank.annotation import Annotation

__all__ = ["Engine", "build_engine"]

log = logging.getLogger("scoring.node")

#: How long :meth:`Engine.close` waits for the clip being scored (the thread is a daemon).
_CLOSE_WAIT_S: Final = 10.0
#: Most pages of embeddings fetched in one sync (the rest comes with the next one).
_MAX_SYNC_PAGES: Final = 1000


class Engine:
    """Scores clips off the node's loop and keeps the duplicate index current.

    Clips go to one scoring thread in submission order; verdicts come back through
    :meth:`poll`. An exception from the scorer (a bug, not a bad clip: bad media gives a
    ``failed`` verdict) comes back in the verdict's place.
    """

    def __init__(self, scorer: Scorer, *, index: DuplicateIndex, index_path: Path) -> None:
        """Run ``scorer`` on a thread; ``index`` (saved at ``index_path``) is the scorer's."""
        self.scorer = scorer
        self.index = index
        self.index_path = index_path
        self._todo: queue.Queue[tuple[str, Path, Annotation, str] | None] = queue.Queue()
        self._done: queue.Queue[tuple[str, ClipScores | BaseException]] = queue.Queue()
        self._submitted: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name="node-scorer", daemon=True)
        self._thread.start()

    @property
    def identity(self) -> ModelIdentity:
        """The model every verdict is made with."""
        return self.scorer.model.identity

    @property
    def pending(self) -> int:
        """Clips submitted whose verdict :meth:`poll` has not returned yet."""
        with self._lock:
            return len(self._submitted)

    def submit(self, key: str, path: Path, annotation: Annotation, *, clip_id: str) -> None:
        """Queue one clip (``clip_id`` keeps it out of its own duplicate search)."""
        with self._lock:
            self._submitted.add(key)
        self._todo.put((key, path, annotation, clip_id))

    def poll(self, timeout: float) -> list[tuple[str, ClipScores | BaseException]]:
        """The verdicts ready now, waiting up to ``timeout`` for the first."""
        results: list[tuple[str, ClipScores | BaseException]] = []
        try:
            results.append(self._done.get(timeout=timeout))
            while True:
                results.append(self._done.get_nowait())
        except queue.Empty:
            pass
        with self._lock:
            for key, _ in results:
                self._submitted.discard(key)
        return results

    def close(self) -> list[str]:
        """Stop after the clip being scored now (waiting a few seconds at most); the keys
        whose verdict :meth:`poll` never returned."""
        self._stopping.set()
        self._todo.put(None)
        self._thread.join(timeout=_CLOSE_WAIT_S)
        with self._lock:
            unfinished = sorted(self._submitted)
            self._submitted.clear()
        return unfinished

    def _work(self) -> None:
        while not self._stopping.is_set():
            item = self._todo.get()
            if item is None or self._stopping.is_set():
                return
            key, path, annotation, clip_id = item
            verdict: ClipScores | BaseException
            try:
                verdict = self.scorer.score(path, annotation, clip_id=clip_id)
            except Exception as exc:
                verdict = exc
            self._done.put((key, verdict))

    # --- duplicate index -----------------------------------------------------------------

    def sync_embeddings(self, client: ValidatorClient, state: NodeState) -> int:
        """Add the clips accepted since the last sync to the index; how many were new."""
        weights = self.identity.weights_sha256
        cursor_name = f"embeddings:{weights}"
        cursor = state.cursor(cursor_name)
        added = 0
        for _ in range(_MAX_SYNC_PAGES):
            page = client.embeddings(
                weights_sha256=weights, after=cursor, limit=MAX_EMBEDDINGS_PAGE
            )
            vectors = []
            for item in page.items:
                try:
                    vectors.append((item.clip_id, decode_embedding(item.embedding, self.index.dim)))
                except ValueError as exc:
                    log.warning("embedding of clip %s skipped: %s", item.clip_id, exc)
            if vectors:
                added += self.index.add_many(vectors)
                self.index.save(self.index_path)
            if page.next_cursor is not None:
                cursor = page.next_cursor
                state.set_cursor(cursor_name, cursor)
            if not page.has_more or not page.items:
                break
        return added


def _open_index(path: Path, scorer_dim: int, state: NodeState, cursor_name: str) -> DuplicateIndex:
    if path.exists():
        try:
            index = DuplicateIndex.load(path)
        except (ValueError, OSError) as exc:
            log.warning("the duplicate index %s is damaged (%s); rebuilding it", path, exc)
        else:
            if index.dim == scorer_dim:
                return index
            log.warning("the duplicate index %s holds %d-d vectors; rebuilding it", path, index.dim)
    # A fresh index must be filled from the start, whatever the cursor said.
    state.set_cursor(cursor_name, None)
    return DuplicateIndex(scorer_dim)


def build_engine(settings: NodeSettings, state: NodeState, client: ValidatorClient) -> Engine:
    """The engine for ``settings``: verified model, its profile, the duplicate index.

    Raises the :class:`scoring.errors.ModelError` family (tampered or unknown weights, no
    such device) and :class:`scoring.errors.UnknownProfileError` (a model without
    thresholds) before anything else happens.
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
    fresh = DuplicateIndex.for_profile(profile)
    index = _open_index(index_path, fresh.dim, state, f"embeddings:{weights}")
    if len(index) == 0:
        index = fresh  # tuned by the profile (HNSW size and parameters)
    scorer = Scorer(model, profile, duplicates=index)
    return Engine(scorer, index=index, index_path=index_path)
