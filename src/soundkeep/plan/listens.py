"""Listen share: real listens where the catalog has them, else an estimate from popularity.

The model (docs/plan.md): log10(listens) is interpolated linearly in popularity between the
configured calibration points, and held flat beyond the last one. Popularity 0 carries no
listen signal, so there the estimate is listens(popularity 1) scaled down by `zero_decades`
decades as the secondary priority falls from its maximum to 0: popularity-0 tracks always
rank below popularity 1, and among themselves by secondary priority.
"""

from __future__ import annotations

import numpy as np

from soundkeep.plan.config import ListenModel


def listens_at(popularity: np.ndarray, model: ListenModel) -> np.ndarray:
    """Estimated listens for popularity 1..100 (popularity 0 is treated as 1)."""
    xs = np.array([p for p, _ in model.points])
    ys = np.log10(np.array([n for _, n in model.points]))
    pop = np.asarray(popularity, dtype=np.float64)
    return np.asarray(10.0 ** np.interp(pop, xs, ys))


def estimate_listens(popularity: np.ndarray, secondary: np.ndarray, model: ListenModel,
                     secondary_max: float) -> np.ndarray:
    """Estimated listens per track from popularity, and for popularity 0 the secondary priority."""
    pop = np.asarray(popularity)
    if not np.issubdtype(pop.dtype, np.integer):
        pop = np.rint(pop).astype(np.int64)
    if pop.size and (pop.min() < 0 or pop.max() > 100):
        pop = np.clip(pop, 0, 100)
    # Popularity is an integer 0..100: look the model up in a table of 101 values.
    table = listens_at(np.maximum(np.arange(101), 1), model)
    out = table[pop]
    zero = np.flatnonzero(pop == 0)
    if zero.size:
        frac = np.clip(np.asarray(secondary, dtype=np.float64)[zero] / max(secondary_max, 1e-12),
                       0.0, 1.0)
        out[zero] = table[1] * 10.0 ** (model.zero_decades * (frac - 1.0))
    return out


def listens_per_track(real: np.ndarray, has_real: np.ndarray, popularity: np.ndarray,
                      secondary: np.ndarray, model: ListenModel,
                      secondary_max: float) -> np.ndarray:
    """Real listens where present (has_real), the popularity estimate elsewhere."""
    est = estimate_listens(popularity, secondary, model, secondary_max)
    if has_real.any():
        np.copyto(est, np.asarray(real, dtype=np.float64), where=has_real)
    return est
