"""Near-duplicate search over clip embeddings, and the embeddings' wire format.

:class:`DuplicateIndex` holds the embeddings of accepted clips (L2-normalised float32,
so cosine similarity is the inner product) in a faiss index:

- up to ``approximate_above`` clips, an exact ``IndexFlatIP`` (brute force: exact, and
  fast enough -- a query over 100k 512-d vectors reads 200 MB);
- beyond, an inverted-file index (``IndexIVFFlat``, inner product): k-means cells
  (``ivf_lists``, trained on the vectors held when the size is crossed) with the
  vectors stored exactly in their cell's list; a query scans the ``ivf_probes`` cells
  whose centroids are nearest. A cosine it reports is exact; only a neighbour may be
  missed, and a near-duplicate (cosine 0.95 or more) sits in the query's own cell or a
  next one far more often than an ordinary nearest neighbour does.

Why IVF and not an HNSW graph: ``benchmarks/scoring/dedup_index.py`` on 1M random
512-d vectors (the hardest case: every non-duplicate about equally far), on two shared
CPU cores. HNSW (M 32, efConstruction 40) took 23 minutes to build and found 55 % of
planted copies at cosine 0.97 with ``efSearch`` 128 (76 % at 256): with no slope in the
distances, a graph walk cannot home in on the copy. IVF (1024 lists) took 69 s and found
99.7 % of copies at cosine 0.95 (the ViT-B-32 profile's threshold, the faintest copy the
check must catch) scanning 32 lists: p50 4.0 ms, p99 7.4 ms a query, against 120 ms for
exact search -- the copy lands in its original's cell or a neighbouring one. That is
also why the centroids do not go stale in a way that matters for duplicates; a drifting
collection only unbalances the lists, and every rebuild (compaction) retrains them.

Clip ids are strings, mapped to faiss's sequential positions by the index itself.
:meth:`DuplicateIndex.remove` marks a position as removed (faiss's removal renumbers a
flat index and slows an inverted one); searches skip removed positions with a faiss
``IDSelector``, and the index is rebuilt without them once they are a quarter of it.
Every method takes one lock, so the node's threads can share an index.
:meth:`DuplicateIndex.save` writes one file atomically (temporary file, fsync, rename);
:meth:`DuplicateIndex.load` reads only files this package wrote -- a faiss index file is
parsed by C++ code that trusts it, so never load one from elsewhere.

:func:`check_duplicate` turns the nearest neighbour into a ``duplicate`` flag.
:func:`encode_embedding` / :func:`decode_embedding` are the format of
:attr:`scoring.report.ClipScores.embedding`: base64 of the little-endian float16 vector,
decoded with checks (length, finite, unit norm) because it comes from other validators.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from scoring.report import Flag, FlagResult, Reason

__all__ = [
    "DEFAULT_APPROXIMATE_ABOVE",
    "MAX_CLIP_ID_CHARS",
    "MAX_INDEX_SIZE",
    "NORM_TOLERANCE",
    "DuplicateIndex",
    "check_duplicate",
    "decode_embedding",
    "encode_embedding",
    "normalised",
]

Vector = npt.NDArray[np.float32]

#: Index size from which search is approximate (IVF), unless the profile says otherwise.
DEFAULT_APPROXIMATE_ABOVE: Final = 100_000
#: Most clips one index holds (about 2 GB of 512-d vectors per million).
MAX_INDEX_SIZE: Final = 20_000_000
#: Longest clip id (the report's ``duplicate_of`` bound).
MAX_CLIP_ID_CHARS: Final = 64
#: A vector is accepted as normalised when its L2 norm is within this of 1 (float16
#: rounding of a unit vector moves its norm by far less).
NORM_TOLERANCE: Final = 0.01
#: Largest k of one search.
MAX_K: Final = 1000
_MAGIC: Final = b"SHOTBANK-DUPIX\x00\x01"
_MAX_HEADER_BYTES: Final = 1 << 31
_COMPACT_SHARE: Final = 0.25
#: k-means training points per IVF list (faiss warns under 39; more buys little).
_TRAIN_PER_LIST: Final = 64
#: faiss's bundled type stubs lack the search-parameter and IO-callback classes.
_faiss: Any = faiss


def normalised(vector: npt.ArrayLike, dim: int) -> Vector:
    """``vector`` as a C-contiguous float32 array of length ``dim`` with unit norm.

    Raises :class:`ValueError` for a wrong shape, non-finite values or a norm not within
    :data:`NORM_TOLERANCE` of 1; then re-normalises exactly (float16 round trips and
    float32 means leave norms a hair off 1).
    """
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (dim,):
        raise ValueError(f"expected a {dim}-d vector, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("the vector has NaN or infinite values")
    norm = float(np.linalg.norm(array))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise ValueError(f"the vector is not normalised (norm {norm:.4f})")
    return np.ascontiguousarray(array / norm, dtype=np.float32)


def encode_embedding(vector: npt.ArrayLike) -> str:
    """A normalised embedding as base64 of its little-endian float16 values (the format of
    :attr:`ClipScores.embedding`)."""
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected a vector, got shape {array.shape}")
    array = normalised(array, array.shape[0])
    return base64.b64encode(array.astype("<f2").tobytes()).decode("ascii")


def decode_embedding(text: str, dim: int) -> Vector:
    """The float32 unit vector of an :func:`encode_embedding` string, checked: valid
    base64, exactly ``dim`` float16 values, all finite, norm within
    :data:`NORM_TOLERANCE` of 1. Raises :class:`ValueError` otherwise."""
    if not 1 <= dim <= 8192:
        raise ValueError(f"embedding width {dim} is out of range")
    expected = math.ceil(dim * 2 / 3) * 4
    if len(text) != expected:
        raise ValueError(f"a {dim}-d embedding is {expected} base64 characters, not {len(text)}")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"the embedding is not base64: {exc}") from exc
    if len(raw) != dim * 2:
        raise ValueError(f"a {dim}-d embedding is {dim * 2} bytes, not {len(raw)}")
    return normalised(np.frombuffer(raw, dtype="<f2").astype(np.float32), dim)


def _clip_id(clip_id: str) -> str:
    if not isinstance(clip_id, str) or not 1 <= len(clip_id) <= MAX_CLIP_ID_CHARS:
        raise ValueError(f"a clip id is a string of 1-{MAX_CLIP_ID_CHARS} characters")
    return clip_id


class _Header(BaseModel):
    """What :meth:`DuplicateIndex.save` writes before the faiss index."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    dim: int = Field(ge=1, le=8192)
    kind: Literal["flat", "ivf"]
    approximate_above: int = Field(ge=1, le=MAX_INDEX_SIZE)
    ivf_lists: int = Field(ge=1, le=1 << 20)
    ivf_probes: int = Field(ge=1, le=1 << 20)
    #: The clip id at each faiss position; None where removed.
    clip_ids: list[str | None] = Field(max_length=MAX_INDEX_SIZE)


class DuplicateIndex:
    """Cosine near-duplicate search over clip embeddings (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        *,
        approximate_above: int = DEFAULT_APPROXIMATE_ABOVE,
        ivf_lists: int = 1024,
        ivf_probes: int = 16,
    ) -> None:
        if not 1 <= dim <= 8192:
            raise ValueError(f"embedding width {dim} is out of range")
        if not 1 <= ivf_probes <= ivf_lists <= 1 << 20:
            raise ValueError("need 1 <= ivf_probes <= ivf_lists <= 2**20")
        if not ivf_lists <= approximate_above <= MAX_INDEX_SIZE:
            raise ValueError(f"approximate_above must be ivf_lists to {MAX_INDEX_SIZE}")
        self.dim = dim
        self.approximate_above = approximate_above
        self.ivf_lists = ivf_lists
        #: Cells scanned per query (recall against speed); may be changed at any time.
        self.ivf_probes = ivf_probes
        self._lock = threading.RLock()
        self._index: Any = faiss.IndexFlatIP(dim)
        self._clip_ids: list[str | None] = []
        self._positions: dict[str, int] = {}
        self._removed: set[int] = set()
        self._skip_removed: tuple[Any, Any] | None = None

    @classmethod
    def for_profile(cls, profile: Any) -> DuplicateIndex:
        """An empty index sized and tuned by a :class:`scoring.profiles.ModelProfile`."""
        return cls(
            profile.embedding_dim,
            approximate_above=profile.approximate_index_above,
            ivf_lists=profile.ivf_lists,
            ivf_probes=profile.ivf_probes,
        )

    @property
    def approximate(self) -> bool:
        """Whether searches scan only the nearest IVF cells (else exact brute force)."""
        return self._kind == "ivf"

    @property
    def _kind(self) -> Literal["flat", "ivf"]:
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    def __len__(self) -> int:
        with self._lock:
            return len(self._positions)

    def __contains__(self, clip_id: object) -> bool:
        with self._lock:
            return clip_id in self._positions

    def add(self, clip_id: str, vector: npt.ArrayLike) -> bool:
        """Index one clip; ``False`` (and nothing changes) if the id is already indexed:
        adding is idempotent, the first vector stays (remove, then add, to replace)."""
        return self.add_many([(clip_id, vector)]) == 1

    def add_many(self, items: Iterable[tuple[str, npt.ArrayLike]]) -> int:
        """Index many clips in one faiss call; returns how many were new. Every item is
        checked before any is added, so a bad one leaves the index unchanged."""
        ids: list[str] = []
        rows: list[Vector] = []
        seen: set[str] = set()
        for clip_id, vector in items:
            _clip_id(clip_id)
            row = normalised(vector, self.dim)
            if clip_id in seen:
                continue
            seen.add(clip_id)
            ids.append(clip_id)
            rows.append(row)
        with self._lock:
            fresh = [i for i, clip_id in enumerate(ids) if clip_id not in self._positions]
            if not fresh:
                return 0
            if len(self._positions) + len(fresh) > MAX_INDEX_SIZE:
                raise ValueError(f"the index would hold over {MAX_INDEX_SIZE} clips")
            if not self.approximate and len(self._positions) + len(fresh) > self.approximate_above:
                self._rebuild("ivf", extra=[rows[i] for i in fresh])
            matrix = np.stack([rows[i] for i in fresh])
            start = len(self._clip_ids)
            self._index.add(matrix)
            for offset, i in enumerate(fresh):
                self._clip_ids.append(ids[i])
                self._positions[ids[i]] = start + offset
            return len(fresh)

    def remove(self, clip_id: str) -> bool:
        """Forget a clip; ``False`` if it was not indexed."""
        with self._lock:
            position = self._positions.pop(clip_id, None)
            if position is None:
                return False
            self._clip_ids[position] = None
            self._removed.add(position)
            self._skip_removed = None
            if len(self._removed) > _COMPACT_SHARE * len(self._clip_ids):
                self._rebuild(self._kind)
            return True

    def vector(self, clip_id: str) -> Vector:
        """The stored vector of an indexed clip (:class:`KeyError` if absent)."""
        with self._lock:
            position = self._positions[clip_id]
            row: Vector = self._index.reconstruct(position)
            return row

    def search(
        self,
        vector: npt.ArrayLike,
        k: int = 1,
        *,
        exclude: str | None = None,
        exact: bool = False,
    ) -> list[tuple[str, float]]:
        """The ``k`` indexed clips most similar to ``vector``, best first, with their
        cosine. ``exclude`` leaves one clip out (the query clip itself); ``exact`` scans
        every vector even when the index is approximate (to audit its recall)."""
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be 1-{MAX_K}")
        query = normalised(vector, self.dim)[None, :]
        with self._lock:
            excluded = self._positions.get(exclude) if exclude is not None else None
            live = len(self._positions) - (excluded is not None)
            if live <= 0:
                return []
            index = self._index
            params = self._params(exact=exact)
            # One more than asked when a clip is excluded: it is dropped from the answer.
            take = min(k + (excluded is not None), len(self._positions))
            if params is None:
                distances, positions = index.search(query, take)
            else:
                distances, positions = index.search(query, take, params=params)
            found: list[tuple[str, float]] = []
            for distance, position in zip(distances[0], positions[0], strict=True):
                if position < 0 or position == excluded:
                    continue
                clip_id = self._clip_ids[int(position)]
                if clip_id is not None:
                    found.append((clip_id, float(min(max(distance, -1.0), 1.0))))
            return found[:k]

    def _params(self, *, exact: bool) -> Any | None:
        """faiss search parameters: the cells to scan (all of them for ``exact``), and a
        selector skipping removed positions (built once per change, not per search)."""
        if not self._removed and not self.approximate:
            return None
        params = _faiss.SearchParametersIVF() if self.approximate else _faiss.SearchParameters()
        if self.approximate:
            params.nprobe = self.ivf_lists if exact else self.ivf_probes
        if self._removed:
            if self._skip_removed is None:
                removed = np.fromiter(self._removed, np.int64, len(self._removed))
                batch = faiss.IDSelectorBatch(removed)
                # The inner selector must outlive the outer one: keep both.
                self._skip_removed = (batch, faiss.IDSelectorNot(batch))
            params.sel = self._skip_removed[1]
        return params

    def _live_rows(self) -> Iterator[Vector]:
        """The live vectors in position order, in chunks."""
        chunk = 65_536
        for start in range(0, len(self._clip_ids), chunk):
            count = min(chunk, len(self._clip_ids) - start)
            rows = self._index.reconstruct_n(start, count)
            keep = [i for i in range(count) if self._clip_ids[start + i] is not None]
            if keep:
                yield np.ascontiguousarray(rows[keep], dtype=np.float32)

    def _training_sample(self, extra: Sequence[Vector]) -> Vector:
        """Up to ``_TRAIN_PER_LIST`` vectors per IVF list, drawn from the live vectors and
        ``extra`` (those about to be added), without copying the whole index."""
        live = [p for p, c in enumerate(self._clip_ids) if c is not None]
        total = len(live) + len(extra)
        size = min(total, self.ivf_lists * _TRAIN_PER_LIST)
        rng = np.random.default_rng(total)
        picks = np.sort(rng.choice(total, size, replace=False))
        rows = [
            self._index.reconstruct(live[i]) if i < len(live) else extra[i - len(live)]
            for i in picks.tolist()
        ]
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)

    def _rebuild(self, kind: Literal["flat", "ivf"], *, extra: Sequence[Vector] = ()) -> None:
        """A fresh index of ``kind`` holding the live vectors, renumbered. An IVF index is
        trained first, on a sample of them and of ``extra``."""
        index: Any
        if kind == "ivf":
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(
                quantizer, self.dim, self.ivf_lists, faiss.METRIC_INNER_PRODUCT
            )
            index.train(self._training_sample(extra))
            # Positions are looked up by number (vector(), rebuilds): keep a direct map.
            index.set_direct_map_type(_faiss.DirectMap.Array)
        else:
            index = faiss.IndexFlatIP(self.dim)
        for rows in self._live_rows():
            index.add(rows)
        self._index = index
        kept = [c for c in self._clip_ids if c is not None]
        self._clip_ids = list(kept)
        self._positions = {c: i for i, c in enumerate(kept)}
        self._removed = set()
        self._skip_removed = None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically (temporary file in the same folder,
        fsync, rename): a crash leaves the old file or the new one, never half of one."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with self._lock:
            try:
                with temporary.open("wb") as out:
                    self._write(out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        _fsync_dir(target.parent)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DuplicateIndex:
        """An index :meth:`save` wrote (only files this package wrote: see the module).
        Raises :class:`ValueError` for a file that is not one, or inconsistent."""
        with Path(path).open("rb") as source:
            return cls._read(source)

    @classmethod
    def _read(cls, source: BinaryIO) -> DuplicateIndex:
        if source.read(len(_MAGIC)) != _MAGIC:
            raise ValueError("not a Shotbank duplicate index file")
        size = int.from_bytes(source.read(8), "little")
        if not 0 < size < _MAX_HEADER_BYTES:
            raise ValueError("the duplicate index header is damaged")
        raw = source.read(size)
        if len(raw) != size:
            raise ValueError("the duplicate index file is truncated")
        header = _Header.model_validate_json(raw)
        try:
            index = faiss.read_index(_faiss.PyCallbackIOReader(source.read))
        except RuntimeError as exc:
            raise ValueError(f"the duplicate index's faiss part cannot be read: {exc}") from exc
        expected = faiss.IndexIVFFlat if header.kind == "ivf" else faiss.IndexFlatIP
        if (
            not isinstance(index, expected)
            or index.d != header.dim
            or index.ntotal != len(header.clip_ids)
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise ValueError("the duplicate index's faiss part does not match its header")
        live = [c for c in header.clip_ids if c is not None]
        if len(set(live)) != len(live) or any(not 1 <= len(c) <= MAX_CLIP_ID_CHARS for c in live):
            raise ValueError("the duplicate index's clip ids are invalid or repeated")
        loaded = cls(
            header.dim,
            approximate_above=header.approximate_above,
            ivf_lists=header.ivf_lists,
            ivf_probes=header.ivf_probes,
        )
        loaded._index = index
        loaded._clip_ids = list(header.clip_ids)
        loaded._positions = {c: i for i, c in enumerate(header.clip_ids) if c is not None}
        loaded._removed = {i for i, c in enumerate(header.clip_ids) if c is None}
        return loaded

    def _write(self, out: BinaryIO) -> None:
        header = _Header(
            dim=self.dim,
            kind=self._kind,
            approximate_above=self.approximate_above,
            ivf_lists=self.ivf_lists,
            ivf_probes=self.ivf_probes,
            clip_ids=self._clip_ids,
        )
        encoded = header.model_dump_json().encode()
        out.write(_MAGIC)
        out.write(len(encoded).to_bytes(8, "little"))
        out.write(encoded)
        faiss.write_index(self._index, _faiss.PyCallbackIOWriter(out.write))


def _fsync_dir(folder: Path) -> None:
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def check_duplicate(
    index: DuplicateIndex,
    vector: npt.ArrayLike,
    *,
    threshold: float,
    exclude: str | None = None,
) -> FlagResult | None:
    """The ``duplicate`` flag when the nearest indexed clip (other than ``exclude``) has a
    cosine of at least ``threshold`` with ``vector``; ``None`` otherwise."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError("the duplicate threshold is a cosine in (0, 1]")
    nearest = index.search(vector, 1, exclude=exclude)
    if not nearest or nearest[0][1] < threshold:
        return None
    clip_id, cosine = nearest[0]
    return FlagResult(
        flag=Flag.DUPLICATE,
        reason=Reason(
            code="junk.duplicate",
            message=(
                f"near-duplicate of accepted clip {clip_id}: embedding cosine {cosine:.4f}, "
                f"at or above the model's threshold {threshold:.4f}"
            ),
        ),
        measure=cosine,
        duplicate_of=clip_id,
    )
