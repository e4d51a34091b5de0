"""Release phases: distributable kept audio in rank order, cut into bundles of about one size."""

from __future__ import annotations

import numpy as np


def assign_phases(est_bytes: np.ndarray, bundle_bytes: int) -> np.ndarray:
    """Phase (1, 2, ...) of each distributed track, given their sizes in rank order.

    A track goes to the bundle-sized slot in which its first byte falls, so every phase holds
    at most bundle_bytes plus one track, and phases follow rank (popularity) order. Slots left
    empty by a track larger than a bundle are not numbered: phases are 1, 2, 3, ... always.
    """
    sizes = np.asarray(est_bytes, dtype=np.int64)
    if sizes.size == 0:
        return np.zeros(0, dtype=np.int64)
    slot = (np.cumsum(sizes) - sizes) // bundle_bytes
    return 1 + np.cumsum(np.diff(slot, prepend=slot[0]) > 0)


def phase_table(phase: np.ndarray, est_bytes: np.ndarray, rank: np.ndarray,
                popularity: np.ndarray) -> list[dict[str, int]]:
    """One entry per phase (tracks, bytes, rank and popularity range) from rank-ordered rows."""
    if len(phase) == 0:
        return []
    n = int(phase.max())
    tracks = np.bincount(phase, minlength=n + 1)[1:]
    starts = np.concatenate([[0], np.cumsum(tracks)[:-1]])
    ends = starts + tracks - 1
    size = np.add.reduceat(np.asarray(est_bytes, dtype=np.int64), starts)
    return [{
        "phase": i + 1, "tracks": int(tracks[i]), "bytes": int(size[i]),
        "first_rank": int(rank[starts[i]]), "last_rank": int(rank[ends[i]]),
        "max_popularity": int(popularity[starts[i]]), "min_popularity": int(popularity[ends[i]]),
    } for i in range(n)]
