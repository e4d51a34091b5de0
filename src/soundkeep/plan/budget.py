"""Tiers under a budget: a multiple-choice knapsack solved by the convex-hull greedy.

Each track i may take one of its tier options k, costing bytes b[i,k] and preserving value
v[i,k] = weight_k * listens_i. The option without audio costs 0 and is worth 0. Maximise the
total value within the byte budget.

Algorithm (Sinha & Zoltners, 1979): per track, keep only the options on the upper concave hull
of its (bytes, value) points, starting at (0, 0); an option under the hull is never worth
taking. Walking a hull gives increments (d_bytes, d_value) of strictly falling efficiency
d_value / d_bytes. Take increments across all tracks in order of efficiency (ties: by the
track's rank, then step) while they fit; stop at the first that does not (the critical one).

The increments taken solve the LP relaxation exactly except for a fraction of the critical
increment, so greedy <= OPT <= LP = greedy + (left over / d_bytes_c) * d_value_c: the greedy
is within one increment of one track of the integer optimum. The order is found by weighted
selection (repeated median partitions, O(n)) rather than a full sort; only ties at the cut-off
are sorted. A larger budget only extends the taken prefix, so for every increment there is one
budget from which it is taken (budget_to_take), which is what `plan explain` reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Below this many candidates the selection sorts what is left.
_SORT_BELOW = 1 << 16


@dataclass
class Increments:
    """Every track's hull increments (a row's increments are ordered by step)."""

    row: np.ndarray       # int64 row of the track
    step: np.ndarray      # int64 step on the track's hull (1 = first audio option)
    d_bytes: np.ndarray   # int64
    d_value: np.ndarray   # float64
    eff: np.ndarray       # float64 d_value / d_bytes
    option: np.ndarray    # int64 option index reached by this increment
    key: np.ndarray       # int64 tie-break among equal efficiencies: row rank, then step
    n_rows: int


@dataclass
class Choice:
    """The solution: the option of every row and how close to optimal it is."""

    option: np.ndarray            # int64 per row; -1 = the empty option
    taken: np.ndarray             # bool per increment
    bytes_used: int
    objective: float
    lp_bound: float               # upper bound on the integer optimum
    lp_gap: float                 # lp_bound - objective: the critical increment's fraction
    cutoff_eff: float | None      # efficiency of the critical increment (None: all taken)
    critical: int | None          # index of the critical increment


Columns = Sequence[np.ndarray] | np.ndarray


def _columns(x: Columns) -> list[np.ndarray]:
    return [x[:, k] for k in range(x.shape[1])] if isinstance(x, np.ndarray) else list(x)


def hull_increments(b: Columns, v: Columns, valid: Columns,
                    rank: np.ndarray | None = None) -> Increments:
    """Hull increments of every row from options b (int bytes), v (value), valid.

    Each is (N, A), or A columns of N: option k of row i costs b[i, k] bytes, is worth
    v[i, k], and exists where valid[i, k]. rank (N,) orders rows whose increments are equally
    efficient (default: row order).
    """
    bc, vc, ok_c = _columns(b), _columns(v), _columns(valid)
    a = len(bc)
    n = len(bc[0]) if a else 0
    # Work on columns (1-D arrays): A, the number of audio tiers, is a handful.
    bs = [np.where(ok_c[k], bc[k].astype(np.float64), np.inf) for k in range(a)]
    vs = [np.where(ok_c[k], vc[k].astype(np.float64), -np.inf) for k in range(a)]
    os_ = [np.full(n, k, dtype=np.int64) for k in range(a)]
    # Sort each row's options by bytes ascending, value descending (a sorting network).
    for i in range(a):
        for j in range(a - 1 - i):
            x, y = j, j + 1
            swap = (bs[x] > bs[y]) | ((bs[x] == bs[y]) & (vs[x] < vs[y]))
            if swap.any():
                for col in (bs, vs, os_):
                    col[x], col[y] = np.where(swap, col[y], col[x]), np.where(swap, col[x], col[y])
    # Keep the points that add value over every cheaper point (the others are dominated).
    best = np.zeros(n)
    live = []
    for k in range(a):
        ok = np.isfinite(bs[k]) & (vs[k] > best)
        best = np.where(ok, vs[k], best)
        live.append(ok)
    vertex = _vertices(bs, vs, live)
    # Increments from each vertex's previous vertex (the origin for the first), column by
    # column: the increments of one row are not adjacent, their steps say their order.
    prev_b, prev_v = np.zeros(n), np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    row_rank = np.arange(n, dtype=np.int64) if rank is None else np.asarray(rank, np.int64)
    parts: list[tuple[np.ndarray, ...]] = []
    for k in range(a):
        idx = np.flatnonzero(vertex[k])
        bk, vk = bs[k][idx], vs[k][idx]
        count[idx] += 1
        parts.append((idx, count[idx], np.rint(bk - prev_b[idx]).astype(np.int64),
                      vk - prev_v[idx], os_[k][idx]))
        prev_b[idx] = bk
        prev_v[idx] = vk
    row, step, d_bytes, d_value, option = (np.concatenate([p[i] for p in parts])
                                           for i in range(5))
    return Increments(row=row, step=step, d_bytes=d_bytes, d_value=d_value,
                      eff=d_value / d_bytes, option=option,
                      key=row_rank[row] * (a + 1) + step, n_rows=n)


def _vertices(bs: list[np.ndarray], vs: list[np.ndarray], live: list[np.ndarray]
              ) -> list[np.ndarray]:
    """Per option, whether it is a hull vertex: a live point not on or under any chord
    between a cheaper live point (or the origin) and a dearer live point."""
    a = len(bs)
    origin = np.zeros(len(bs[0]) if a else 0)
    vertex = []
    # Unavailable options are inf / -inf: their products are NaN, masked out by `live`.
    with np.errstate(invalid="ignore"):
        for k in range(a):
            on = live[k].copy()
            for i in range(-1, k):
                bi, vi = (origin, origin) if i < 0 else (bs[i], vs[i])
                for j in range(k + 1, a):
                    under = (vs[k] - vi) * (bs[j] - bi) <= (vs[j] - vi) * (bs[k] - bi)
                    under &= live[j] if i < 0 else (live[j] & live[i])
                    on &= ~under
            vertex.append(on)
    return vertex


def _critical(eff: np.ndarray, key: np.ndarray, d_bytes: np.ndarray,
              budget: int) -> tuple[int, int]:
    """The first increment, in (efficiency desc, key) order, whose bytes exceed the budget."""
    cand = np.arange(len(eff))
    acc = 0  # bytes of the increments known to come before every candidate
    while cand.size > _SORT_BELOW:
        e = eff[cand]
        mid = cand.size // 2
        pivot = np.partition(e, mid)[mid]
        gt = e > pivot
        s_gt = int(d_bytes[cand[gt]].sum())
        if acc + s_gt > budget:
            cand = cand[gt]
            continue
        eq = e == pivot
        s_eq = int(d_bytes[cand[eq]].sum())
        if acc + s_gt + s_eq > budget:
            acc += s_gt
            cand = cand[eq]
            break
        acc += s_gt + s_eq
        cand = cand[e < pivot]
    order = cand[np.lexsort((key[cand], -eff[cand]))]
    cum = acc + np.cumsum(d_bytes[order])
    k = int(np.searchsorted(cum, budget, side="right"))
    return int(order[k]), int(cum[k] - d_bytes[order[k]])


def solve(inc: Increments, budget: int | None) -> Choice:
    """Choose every row's option: take increments by efficiency while they fit the budget."""
    total = int(inc.d_bytes.sum())
    if budget is None or total <= budget:
        taken = np.ones(len(inc.eff), dtype=bool)
        crit: int | None = None
        cutoff: float | None = None
        used = total
    else:
        crit, used = _critical(inc.eff, inc.key, inc.d_bytes, budget)
        cutoff = float(inc.eff[crit])
        taken = (inc.eff > cutoff) | ((inc.eff == cutoff) & (inc.key < inc.key[crit]))
    option = np.full(inc.n_rows, -1, dtype=np.int64)
    # A row's taken steps are a prefix of its hull: its option is that of its last one.
    for s in range(1, int(inc.step.max(initial=0)) + 1):
        t = taken & (inc.step == s)
        option[inc.row[t]] = inc.option[t]
    objective = float(inc.d_value[taken].sum())
    gap = 0.0
    if crit is not None and budget is not None:
        gap = (budget - used) / float(inc.d_bytes[crit]) * float(inc.d_value[crit])
    return Choice(option=option, taken=taken, bytes_used=used, objective=objective,
                  lp_bound=objective + gap, lp_gap=gap, cutoff_eff=cutoff, critical=crit)


def budget_to_take(inc: Increments, index: int) -> int:
    """The smallest budget from which increment `index` is taken (all before it, and itself)."""
    e = inc.eff[index]
    before = (inc.eff > e) | ((inc.eff == e) & (inc.key <= inc.key[index]))
    return int(inc.d_bytes[before].sum())
