"""Near-duplicate search over clip embeddings, and the embeddings' wire format.

:class:`DuplicateIndex` holds the embeddings of accepted clips (L2-normalised float32,
so cosine similarity is the inner product) in a faiss index:

- up to ``approximate_above`` clips, an exact ``IndexFlatIP`` (brute force: exact, and
  fast enough -- a query over 100k 512-d vectors reads 200 MB);
- beyond, an ``IndexHNSWFlat`` graph with the inner-product metric, built from the flat
  index's vectors the moment the size is crossed. HNSW needs no training (an IVF index's
  centroids go stale as the collection drifts) and answers in about a millisecond at 1M
  clips (``benchmarks/scoring/dedup_index.py``). Its vectors stay exact, so a cosine it
  reports is exact; only a neighbour may be missed, and much more rarely for a true
  near-duplicate (cosine above 0.95) than for an ordinary nearest neighbour.

Clip ids are strings, mapped to faiss's sequential positions by the index itself.
:meth:`DuplicateIndex.remove` marks a position as removed (neither faiss index type can
delete from the middle without renumbering or, for HNSW, at all); searches skip removed
positions with a faiss ``IDSelector``, and the index is rebuilt without them once they
are a quarter of it. Every method takes one lock, so the node's threads can share an
index. :meth:`DuplicateIndex.save` writes one file atomically (temporary file, fsync,
rename); :meth:`DuplicateIndex.load` reads only files this package wrote -- a faiss index
file is parsed by C++ code that trusts it, so never load one from elsewhere.

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
from collections.abc import Iterable
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

#: Index size from which search is approximate (HNSW), unless the profile says otherwise.
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
_HNSW_EF_CONSTRUCTION: Final = 40
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
    kind: Literal["flat", "hnsw"]
    approximate_above: int = Field(ge=1, le=MAX_INDEX_SIZE)
    hnsw_m: int = Field(ge=4, le=128)
    ef_search: int = Field(ge=1, le=4096)
    #: The clip id at each faiss position; None where removed.
    clip_ids: list[str | None] = Field(max_length=MAX_INDEX_SIZE)


class DuplicateIndex:
    """Cosine near-duplicate search over clip embeddings (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        *,
        approximate_above: int = DEFAULT_APPROXIMATE_ABOVE,
        hnsw_m: int = 32,
        ef_search: int = 128,
    ) -> None:
        if not 1 <= dim <= 8192:
            raise ValueError(f"embedding width {dim} is out of range")
        if not 1 <= approximate_above <= MAX_INDEX_SIZE:
            raise ValueError(f"approximate_above must be 1-{MAX_INDEX_SIZE}")
        if not 4 <= hnsw_m <= 128 or not 1 <= ef_search <= 4096:
            raise ValueError("hnsw_m must be 4-128 and ef_search 1-4096")
        self.dim = dim
        self.approximate_above = approximate_above
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self._lock = threading.RLock()
        self._index: Any = faiss.IndexFlatIP(dim)
        self._clip_ids: list[str | None] = []
        self._positions: dict[str, int] = {}
        self._removed: set[int] = set()

    @classmethod
    def for_profile(cls, profile: Any) -> DuplicateIndex:
        """An empty index sized and tuned by a :class:`scoring.profiles.ModelProfile`."""
        return cls(
            profile.embedding_dim,
            approximate_above=profile.approximate_index_above,
            hnsw_m=profile.hnsw_m,
            ef_search=profile.hnsw_ef_search,
        )

    @property
    def approximate(self) -> bool:
        """Whether searches go through the HNSW graph (else exact brute force)."""
        return self._kind == "hnsw"

    @property
    def _kind(self) -> Literal["flat", "hnsw"]:
        return "hnsw" if isinstance(self._index, faiss.IndexHNSW) else "flat"

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
                self._rebuild("hnsw")
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
            if len(self._removed) > _COMPACT_SHARE * len(self._clip_ids):
                self._rebuild(self._kind)
            return True

    def vector(self, clip_id: str) -> Vector:
        """The stored vector of an indexed clip (:class:`KeyError` if absent)."""
        with self._lock:
            position = self._positions[clip_id]
            row: Vector = self._storage().reconstruct(position)
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
            skip = set(self._removed)
            if exclude is not None and exclude in self._positions:
                skip.add(self._positions[exclude])
            live = len(self._clip_ids) - len(skip)
            if live <= 0:
                return []
            index = self._storage() if exact else self._index
            params = self._params(skip, exact=exact)
            take = min(k, live)
            if params is None:
                distances, positions = index.search(query, take)
            else:
                distances, positions = index.search(query, take, params=params)
            found: list[tuple[str, float]] = []
            for distance, position in zip(distances[0], positions[0], strict=True):
                if position < 0:
                    continue
                clip_id = self._clip_ids[int(position)]
                if clip_id is not None:
                    found.append((clip_id, float(min(max(distance, -1.0), 1.0))))
            return found

    def _storage(self) -> Any:
        if self.approximate:
            return faiss.downcast_index(self._index.storage)
        return self._index

    def _params(self, skip: set[int], *, exact: bool) -> Any | None:
        approximate = self.approximate and not exact
        if not skip and not approximate:
            return None
        params = _faiss.SearchParametersHNSW() if approximate else _faiss.SearchParameters()
        if approximate:
            params.efSearch = self.ef_search
        if skip:
            # The selectors must outlive the search: keep them on the params object.
            batch = faiss.IDSelectorBatch(np.fromiter(skip, np.int64, len(skip)))
            params.sel = faiss.IDSelectorNot(batch)
            params._keep = (batch, params.sel)
        return params

    def _rebuild(self, kind: Literal["flat", "hnsw"]) -> None:
        """A fresh index of ``kind`` holding the live vectors, renumbered."""
        storage = self._storage()
        index = self._empty(kind)
        chunk = 65_536
        for start in range(0, len(self._clip_ids), chunk):
            count = min(chunk, len(self._clip_ids) - start)
            rows = storage.reconstruct_n(start, count)
            keep = [i for i in range(count) if self._clip_ids[start + i] is not None]
            if keep:
                index.add(np.ascontiguousarray(rows[keep], dtype=np.float32))
        self._index = index
        self._clip_ids = [c for c in self._clip_ids if c is not None]
        self._positions = {c: i for i, c in enumerate(self._clip_ids) if c is not None}
        self._removed = set()

    def _empty(self, kind: Literal["flat", "hnsw"]) -> Any:
        if kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = self.ef_search
        return index

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
        expected = faiss.IndexHNSWFlat if header.kind == "hnsw" else faiss.IndexFlatIP
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
            hnsw_m=header.hnsw_m,
            ef_search=header.ef_search,
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
            hnsw_m=self.hnsw_m,
            ef_search=self.ef_search,
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
