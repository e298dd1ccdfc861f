"""Near-duplicate index at scale: build time, query latency and recall against brute force.

    python -m benchmarks.scoring.dedup_index [--n 1000000] [--dim 512] [--queries 1000]
                                             [--probes 8,16,32,64] [--exact-queries 100]

1. Builds a :class:`scoring.dedup.DuplicateIndex` the way a validator does, through
   ``add_many`` in chunks: ``--n`` random unit vectors (seeded Gaussian, normalised) of
   ``--dim`` dimensions with string clip ids, exact (``IndexFlatIP``) up to
   ``--approximate-above`` (the ViT-B-32 profile's 100,000) and IVF (``--lists`` cells,
   trained when the size is crossed) beyond, the switch and training included in the
   build time.
2. While generating, computes the exact nearest neighbour (numpy brute force, chunk by
   chunk, so the vectors are never held twice) of two query sets:
   - ``random``: ``--queries`` fresh random unit vectors. In 512 dimensions a random
     vector's nearest neighbour among a million is barely closer than the rest (cosine
     about 0.2 against a typical 0.0 +- 0.04): the hardest case for an approximate
     index, and not what the duplicate check asks;
   - ``duplicate``: ``--queries`` indexed vectors with noise added so their cosine with
     the original is ``--duplicate-cosine`` (0.95, the ViT-B-32 profile's duplicate
     threshold: the faintest copy the check must still find): the question the
     duplicate check actually asks.
3. Measures, one query at a time (as the scorer asks them), the latency of the IVF
   search (``DuplicateIndex.search``) for each ``--probes`` (cells scanned) and its
   recall@1 on both query sets against the brute-force answers, and the latency of
   exact search through the same index (``search(..., exact=True)``: every cell,
   ``--exact-queries`` of them). With ``--n`` at or below ``--approximate-above`` the
   index stays exact and both latencies are of brute force.

Prints progress lines, then one JSON line (the last line): build seconds and rate, per
``probes`` p50/p99 latency (ms) and recall@1 on both query sets, exact p50/p99, the
speed-up ``exact_p50 / approximate_p50`` at the profile's ``probes``, and peak RSS.
Memory: about 4 bytes x dim per vector plus 8 (direct map) and 150 bytes per id.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import faiss
import numpy as np
import numpy.typing as npt

from scoring.dedup import DEFAULT_APPROXIMATE_ABOVE, DuplicateIndex

Matrix = npt.NDArray[np.float32]

#: The deployment profile's IVF parameters (scoring/profiles.json, ViT-B-32).
PROFILE_LISTS: Final = 1024
PROFILE_PROBES: Final = 32
CHUNK: Final = 50_000


def unit_rows(rng: np.random.Generator, rows: int, dim: int) -> Matrix:
    """``rows`` random unit vectors (uniform on the sphere)."""
    matrix = rng.standard_normal((rows, dim), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def noisy_copies(rng: np.random.Generator, rows: Matrix, cosine: float) -> Matrix:
    """Unit vectors at about ``cosine`` from each of ``rows``: the original plus
    orthogonal-ish Gaussian noise of norm ``tan(acos(cosine))``, renormalised."""
    noise = rng.standard_normal(rows.shape, dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    copies = rows + np.float32(np.tan(np.arccos(cosine))) * noise
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    return copies.astype(np.float32)


@dataclass
class Nearest:
    """Running exact nearest neighbour of each query."""

    cosine: npt.NDArray[np.float32]
    position: npt.NDArray[np.int64]

    @classmethod
    def empty(cls, queries: int) -> Nearest:
        return cls(np.full(queries, -2.0, np.float32), np.full(queries, -1, np.int64))

    def update(self, queries: Matrix, chunk: Matrix, offset: int) -> None:
        scores = queries @ chunk.T
        best = scores.argmax(axis=1)
        value = scores[np.arange(len(queries)), best]
        better = value > self.cosine
        self.cosine[better] = value[better]
        self.position[better] = best[better] + offset


def clip_id(position: int) -> str:
    """The benchmark's clip id of the vector at ``position``."""
    return f"clip-{position:09d}"


def percentile_ms(samples: Sequence[float], share: float) -> float:
    """The ``share`` quantile of ``samples`` (seconds) in milliseconds."""
    ordered = sorted(samples)
    index = min(int(share * len(ordered)), len(ordered) - 1)
    return ordered[index] * 1000.0


def timed_search(
    index: DuplicateIndex, queries: Matrix, *, exact: bool
) -> tuple[list[str | None], list[float]]:
    """The top hit of each query, one search call each, and each call's seconds."""
    found: list[str | None] = []
    seconds: list[float] = []
    for query in queries:
        start = time.perf_counter()
        hits = index.search(query, 1, exact=exact)
        seconds.append(time.perf_counter() - start)
        found.append(hits[0][0] if hits else None)
    return found, seconds


def recall(found: Sequence[str | None], truth: npt.NDArray[np.int64]) -> float:
    """Share of queries whose top hit is the exact nearest neighbour."""
    hits = sum(1 for f, t in zip(found, truth, strict=True) if f == clip_id(int(t)))
    return hits / len(found)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the figures."""
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    # The indexed vectors come from their own generator so the second brute-force pass
    # can draw them again instead of holding a second copy.
    vector_seed = args.seed + 1
    vectors = np.random.default_rng(vector_seed)
    random_queries = unit_rows(rng, args.queries, args.dim)
    sources = np.sort(rng.choice(args.n, size=min(args.queries, args.n), replace=False))
    duplicate_queries = np.zeros((len(sources), args.dim), np.float32)
    nearest_random = Nearest.empty(len(random_queries))
    nearest_duplicate = Nearest.empty(len(sources))
    index = DuplicateIndex(
        args.dim,
        approximate_above=args.approximate_above,
        ivf_lists=args.lists,
        ivf_probes=min(PROFILE_PROBES, args.lists),
    )
    print(
        f"building: {args.n:,} x {args.dim}-d, exact up to {args.approximate_above:,}, "
        f"IVF {args.lists} lists beyond; faiss threads {faiss.omp_get_max_threads()}",
        flush=True,
    )
    build_s = 0.0
    truth_s = 0.0
    for start in range(0, args.n, CHUNK):
        stop = min(start + CHUNK, args.n)
        chunk = unit_rows(vectors, stop - start, args.dim)
        inside = (sources >= start) & (sources < stop)
        if inside.any():
            duplicate_queries[inside] = noisy_copies(
                rng, chunk[sources[inside] - start], args.duplicate_cosine
            )
        began = time.perf_counter()
        index.add_many((clip_id(start + i), row) for i, row in enumerate(chunk))
        build_s += time.perf_counter() - began
        began = time.perf_counter()
        nearest_random.update(random_queries, chunk, start)
        truth_s += time.perf_counter() - began
        # Duplicate queries are known only once their source's chunk has been drawn, so
        # their brute force is finished in a second pass over the stored vectors below.
        print(
            f"  {stop:>12,} indexed ({'ivf' if index.approximate else 'flat'}), "
            f"build {build_s:7.1f} s",
            flush=True,
        )
    began = time.perf_counter()
    vectors = np.random.default_rng(vector_seed)
    for start in range(0, args.n, CHUNK):
        stop = min(start + CHUNK, args.n)
        nearest_duplicate.update(
            duplicate_queries, unit_rows(vectors, stop - start, args.dim), start
        )
    truth_s += time.perf_counter() - began
    print(f"brute-force answers: {truth_s:.1f} s", flush=True)
    copy_cosine = float(
        np.mean(
            np.einsum(
                "ij,ij->i",
                duplicate_queries,
                np.stack([index.vector(clip_id(int(p))) for p in sources]),
            )
        )
    )
    duplicate_is_source = float(np.mean(nearest_duplicate.position == sources))

    sweeps: list[dict[str, Any]] = []
    for probes in args.probes:
        index.ivf_probes = min(probes, args.lists)
        found_random, seconds = timed_search(index, random_queries, exact=False)
        found_duplicate, seconds_duplicate = timed_search(index, duplicate_queries, exact=False)
        all_seconds = seconds + seconds_duplicate
        sweep = {
            "probes": index.ivf_probes,
            "p50_ms": round(percentile_ms(all_seconds, 0.5), 4),
            "p99_ms": round(percentile_ms(all_seconds, 0.99), 4),
            "recall_at_1_random": round(recall(found_random, nearest_random.position), 4),
            "recall_at_1_duplicate": round(recall(found_duplicate, nearest_duplicate.position), 4),
        }
        sweeps.append(sweep)
        print(
            f"approximate probes={index.ivf_probes}: p50 {sweep['p50_ms']} ms, "
            f"p99 {sweep['p99_ms']} ms, "
            f"recall@1 random {sweep['recall_at_1_random']}, "
            f"duplicate {sweep['recall_at_1_duplicate']}",
            flush=True,
        )
    pick = rng.choice(
        len(random_queries) + len(duplicate_queries), args.exact_queries, replace=False
    )
    exact_queries = np.concatenate([random_queries, duplicate_queries])[pick]
    exact_truth = np.concatenate([nearest_random.position, nearest_duplicate.position])[pick]
    exact_found, exact_seconds = timed_search(index, exact_queries, exact=True)
    exact = {
        "queries": len(exact_seconds),
        "p50_ms": round(percentile_ms(exact_seconds, 0.5), 4),
        "p99_ms": round(percentile_ms(exact_seconds, 0.99), 4),
    }
    print(f"exact: p50 {exact['p50_ms']} ms, p99 {exact['p99_ms']} ms", flush=True)
    at_profile = next((s for s in sweeps if s["probes"] == PROFILE_PROBES), sweeps[0])
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "benchmark": "dedup_index",
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "kind": "ivf" if index.approximate else "flat",
        "approximate_above": args.approximate_above,
        "lists": args.lists,
        "faiss_threads": faiss.omp_get_max_threads(),
        "build_s": round(build_s, 2),
        "build_vectors_per_s": round(args.n / build_s, 1) if build_s else None,
        "brute_force_truth_s": round(truth_s, 2),
        "duplicate_copy_cosine": round(copy_cosine, 4),
        "duplicate_source_is_nearest": round(duplicate_is_source, 4),
        "approximate": sweeps,
        "exact": exact,
        "profile_probes": at_profile["probes"],
        "speedup_p50": round(exact["p50_ms"] / at_profile["p50_ms"], 1)
        if at_profile["p50_ms"]
        else None,
        "peak_rss_mb": round(peak_rss_mb, 1),
        # Exact search through the index against numpy's brute force: must be 1.0.
        "exact_agrees_with_numpy": round(recall(exact_found, exact_truth), 4),
    }


def _int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(not 1 <= v <= 4096 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of integers 1-4096")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the last line printed is the JSON of figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=_positive, default=1_000_000, help="vectors (1000000)")
    parser.add_argument("--dim", type=_positive, default=512, help="dimensions (512)")
    parser.add_argument("--queries", type=_positive, default=1000, help="per query set (1000)")
    parser.add_argument(
        "--exact-queries", type=_positive, default=100, help="brute-force latency queries (100)"
    )
    parser.add_argument(
        "--probes", type=_int_list, default=[8, 16, PROFILE_PROBES, 64], help="8,16,32,64"
    )
    parser.add_argument("--lists", type=_positive, default=PROFILE_LISTS, help="IVF cells (1024)")
    parser.add_argument(
        "--approximate-above",
        type=_positive,
        default=DEFAULT_APPROXIMATE_ABOVE,
        help="size from which the index is HNSW (100000)",
    )
    parser.add_argument(
        "--duplicate-cosine", type=float, default=0.95, help="cosine of a planted copy (0.95)"
    )
    parser.add_argument("--threads", type=int, default=0, help="faiss threads (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.lists > args.approximate_above:
        parser.error("--lists must not exceed --approximate-above")
    if args.exact_queries > 2 * min(args.queries, args.n):
        parser.error("--exact-queries is more than the queries drawn")
    if not 0.0 < args.duplicate_cosine < 1.0:
        parser.error("--duplicate-cosine must be in (0, 1)")
    figures = run(args)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
