"""Release phases: distributable kept audio in rank order, cut into bundles of about one size."""

from __future__ import annotations

import numpy as np


def assign_phases(est_bytes: np.ndarray, in_phase: np.ndarray, bundle_bytes: int) -> np.ndarray:
    """Phase (1, 2, ...) per row in rank order; 0 for rows that are not distributed.

    A track goes to the bundle-sized slot in which its first byte falls, so every phase holds
    at most bundle_bytes plus one track, and phases follow rank (popularity) order. Slots left
    empty by a track larger than a bundle are not numbered: phases are 1, 2, 3, ... always.
    """
    phase = np.zeros(len(est_bytes), dtype=np.int64)
    sizes = est_bytes[in_phase].astype(np.int64)
    if sizes.size == 0:
        return phase
    slot = (np.cumsum(sizes) - sizes) // bundle_bytes
    phase[in_phase] = 1 + np.cumsum(np.diff(slot, prepend=slot[0]) > 0)
    return phase


def phase_table(phase: np.ndarray, est_bytes: np.ndarray, rank: np.ndarray,
                popularity: np.ndarray) -> list[dict[str, int]]:
    """One entry per phase: tracks, bytes, first and last rank, popularity range."""
    mask = phase > 0
    if not mask.any():
        return []
    p = phase[mask]
    n = int(p.max())
    tracks = np.bincount(p, minlength=n + 1)[1:]
    # Rows are in rank order, so a phase's rows are contiguous among the masked rows.
    starts = np.concatenate([[0], np.cumsum(tracks)[:-1]])
    size = np.add.reduceat(est_bytes[mask].astype(np.int64), starts)
    ends = starts + tracks - 1
    r = rank[mask]
    pop = popularity[mask]
    out = []
    for i in range(n):
        out.append({
            "phase": i + 1, "tracks": int(tracks[i]), "bytes": int(size[i]),
            "first_rank": int(r[starts[i]]), "last_rank": int(r[ends[i]]),
            "max_popularity": int(pop[starts[i]]), "min_popularity": int(pop[ends[i]]),
        })
    return out
