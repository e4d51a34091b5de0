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
# The cut-off is first bracketed from this many evenly spaced increments.
_SAMPLE = 1 << 16


@dataclass
class Increments:
    """Every track's hull increments (a row's increments are ordered by step)."""

    row: np.ndarray       # int32 row of the track
    step: np.ndarray      # int8 step on the track's hull (1 = first audio option)
    d_bytes: np.ndarray   # int64
    d_value: np.ndarray   # float64
    eff: np.ndarray       # float64 d_value / d_bytes
    option: np.ndarray    # int8 option index reached by this increment
    row_rank: np.ndarray  # int64 per row: orders rows whose increments are equally efficient
    n_rows: int
    n_options: int

    def key(self, idx: np.ndarray | int) -> np.ndarray:
        """Tie-break among equal efficiencies: the row's rank, then the step."""
        return (self.row_rank[self.row[idx]] * (self.n_options + 1)
                + self.step[idx].astype(np.int64))


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
                    rank: np.ndarray | None = None, uniform: np.ndarray | None = None,
                    template: tuple[Sequence[float], Sequence[float]] | None = None,
                    ) -> Increments:
    """Hull increments of every row from options b (int bytes), v (value), valid.

    Each is (N, A), or A columns of N: option k of row i costs b[i, k] bytes, is worth
    v[i, k], and exists where valid[i, k]. rank (N,) orders rows whose increments are equally
    efficient (default: row order).

    Rows marked `uniform` have every option and the same hull shape as `template` (bytes and
    values of one row, up to a per-row scale of each): b[i] ~ s_i * template_bytes and
    v[i] = l_i * template_values. Their hull vertices are found once from the template (the
    test is scale-free), which is most of the catalog: tracks without a held file cost
    duration x bitrate in every tier and are worth weight x listens.
    """
    bc, vc, ok_c = _columns(b), _columns(v), _columns(valid)
    a = len(bc)
    n = len(bc[0]) if a else 0
    row_rank = np.arange(n, dtype=np.int64) if rank is None else np.asarray(rank, np.int64)
    parts: list[tuple[np.ndarray, ...]] = []
    regular = np.zeros(n, dtype=bool) if uniform is None or template is None else uniform
    if template is not None and regular.any():
        parts, bad = _uniform_increments(bc, vc, regular, template)
        if bad.size:
            regular = regular.copy()
            regular[bad] = False
    irregular = np.flatnonzero(~regular)
    if irregular.size:
        # Options in the template's byte order: held files mostly keep it.
        order = None if template is None else \
            [int(k) for k in np.argsort(np.asarray(template[0], dtype=np.float64),
                                        kind="stable")]
        parts.extend(_general_increments(bc, vc, ok_c, irregular, order))
    if not parts:
        parts = [(np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros(0, np.int64),
                  np.zeros(0), np.zeros(0), np.zeros(0, np.int8))]
    if len(parts) == 1:
        row, step, d_bytes, d_value, eff, option = parts[0]
    else:
        row, step, d_bytes, d_value, eff, option = (np.concatenate([p[i] for p in parts])
                                                    for i in range(6))
    return Increments(row=row, step=step, d_bytes=d_bytes, d_value=d_value, eff=eff,
                      option=option, row_rank=row_rank, n_rows=n, n_options=a)


def _uniform_increments(bc: list[np.ndarray], vc: list[np.ndarray], regular: np.ndarray,
                        template: tuple[Sequence[float], Sequence[float]]
                        ) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray]:
    """Increments of rows sharing the template's hull; also the rows where rounding broke it."""
    a = len(bc)
    tb = np.asarray(template[0], dtype=np.float64)
    tv = np.asarray(template[1], dtype=np.float64)
    order = np.lexsort((-tv, tb))
    shape = _hull_rows([np.array([tb[k]]) for k in order], [np.array([tv[k]]) for k in order],
                       [np.ones(1, dtype=bool)] * a)
    path = [int(order[k]) for k in range(a) if shape[k][0]]
    every = bool(regular.all())
    rows = np.arange(len(regular), dtype=np.int32) if every else \
        np.flatnonzero(regular).astype(np.int32)
    r, m = rows.size, rows.size * len(path)
    # One array per field for every step, written in place (these are most increments).
    row = np.empty(m, dtype=np.int32)
    step = np.empty(m, dtype=np.int8)
    option = np.empty(m, dtype=np.int8)
    d_bytes = np.empty(m, dtype=np.int64)
    d_value = np.empty(m)
    eff = np.empty(m)
    bad = np.zeros(r, dtype=bool)
    prev_b: np.ndarray | int = 0
    prev_v: np.ndarray | float = 0.0
    for s, k in enumerate(path):
        part = slice(s * r, (s + 1) * r)
        bk = bc[k] if every else bc[k][rows]
        vk = vc[k] if every else vc[k][rows]
        row[part] = rows
        step[part] = s + 1
        option[part] = k
        np.subtract(bk, prev_b, out=d_bytes[part])
        np.subtract(vk, prev_v, out=d_value[part])
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(d_value[part], d_bytes[part], out=eff[part])
        # Whole bytes can break the shape for tiny sizes: such rows take the general path.
        bad |= d_bytes[part] <= 0
        if s:
            bad |= ~(eff[part] < eff[(s - 1) * r: s * r])
        prev_b, prev_v = bk, vk
    if path:
        bad |= ~np.all((d_value > 0).reshape(len(path), r), axis=0)
    # An option off the template's path must stay on or under this row's path (rounding).
    for x in (k for k in range(a) if k not in path):
        bx = (bc[x] if every else bc[x][rows]).astype(np.float64)
        vx = vc[x] if every else vc[x][rows]
        pb: np.ndarray | float = 0.0
        pv: np.ndarray | float = 0.0
        for k in path:
            bk = bc[k] if every else bc[k][rows]
            vk = vc[k] if every else vc[k][rows]
            inside = (bx >= pb) & (bx <= bk)
            bad |= inside & ((vx - pv) * (bk - pb) > (vk - pv) * (bx - pb))
            pb, pv = bk, vk
        bad |= (bx > pb) & (vx > pv)
    fields: tuple[np.ndarray, ...] = (row, step, d_bytes, d_value, eff, option)
    if bad.any():
        keep = np.tile(~bad, len(path))
        fields = tuple(x[keep] for x in fields)
    return [fields], rows[bad]


def _general_increments(bc: list[np.ndarray], vc: list[np.ndarray], ok_c: list[np.ndarray],
                        rows: np.ndarray, order: Sequence[int] | None = None
                        ) -> list[tuple[np.ndarray, ...]]:
    """Increments of any rows: sort each row's options, find its hull, walk it. order: the
    options by bytes as most rows have them (the sort then swaps nothing for those rows)."""
    a = len(bc)
    every = rows.size == (len(bc[0]) if a else 0)

    def pick(x: np.ndarray) -> np.ndarray:
        return x if every else x[rows]

    ks = list(range(a)) if order is None else list(order)
    bs = [np.where(pick(ok_c[k]), pick(bc[k]).astype(np.float64), np.inf) for k in ks]
    vs = [np.where(pick(ok_c[k]), pick(vc[k]).astype(np.float64), -np.inf) for k in ks]
    os_ = [np.full(rows.size, k, dtype=np.int8) for k in ks]
    # Sort each row's options by bytes ascending, value descending, then as configured (a
    # sorting network).
    for i in range(a):
        for j in range(a - 1 - i):
            x, y = j, j + 1
            swap = bs[x] > bs[y]
            same = bs[x] == bs[y]
            if same.any():
                swap |= same & ((vs[x] < vs[y]) | ((vs[x] == vs[y]) & (os_[x] > os_[y])))
            if swap.any():
                for col in (bs, vs, os_):
                    col[x], col[y] = np.where(swap, col[y], col[x]), np.where(swap, col[x], col[y])
    vertex = _hull_rows(bs, vs, [np.isfinite(x) for x in bs])
    parts: list[tuple[np.ndarray, ...]] = []
    pb, pv = np.zeros(rows.size), np.zeros(rows.size)
    count = np.zeros(rows.size, dtype=np.int8)
    row32 = rows.astype(np.int32)
    for k in range(a):
        if vertex[k].all():  # every row has this vertex: no gathering
            count += 1
            db = np.rint(bs[k] - pb).astype(np.int64)
            dv = vs[k] - pv
            parts.append((row32, count.copy(), db, dv, dv / db, os_[k]))
            pb, pv = bs[k].copy(), vs[k].copy()
            continue
        idx = np.flatnonzero(vertex[k])
        bk, vk = bs[k][idx], vs[k][idx]
        count[idx] += 1
        db = np.rint(bk - pb[idx]).astype(np.int64)
        dv = vk - pv[idx]
        parts.append((row32[idx], count[idx], db, dv, dv / db, os_[k][idx]))
        pb[idx] = bk
        pv[idx] = vk
    return parts


def _hull_rows(bs: list[np.ndarray], vs: list[np.ndarray], exists: list[np.ndarray]
               ) -> list[np.ndarray]:
    """Hull vertices of rows whose options are sorted by bytes (then value, descending)."""
    n = len(bs[0]) if bs else 0
    # Keep the points that add value over every cheaper point (the others are dominated).
    best = np.zeros(n)
    live = []
    for k in range(len(bs)):
        ok = exists[k] & (vs[k] > best)
        best = np.where(ok, vs[k], best)
        live.append(ok)
    return _vertices(bs, vs, live)


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


def _bracket(inc: Increments, budget: int, total: int) -> tuple[np.ndarray, int] | None:
    """Candidates around the cut-off, bracketed from a sample, and the bytes before them."""
    m = len(inc.eff)
    if m <= 4 * _SAMPLE:
        return None
    sample = np.arange(0, m, m // _SAMPLE)
    se, sb = inc.eff[sample], inc.d_bytes[sample].astype(np.float64)
    order = np.argsort(-se, kind="stable")
    cum = np.cumsum(sb[order]) * (total / max(float(sb.sum()), 1.0))
    j = int(np.searchsorted(cum, budget))
    margin = _SAMPLE // 64
    hi = se[order[max(j - margin, 0)]]
    lo = se[order[min(j + margin, len(order) - 1)]]
    above = inc.eff > hi
    s_above = int(inc.d_bytes[above].sum())
    if s_above > budget:
        return None
    near = (inc.eff >= lo) & ~above
    cand = np.flatnonzero(near)
    if s_above + int(inc.d_bytes[cand].sum()) <= budget:
        return None
    return cand, s_above


def _critical(inc: Increments, budget: int, total: int) -> tuple[int, int]:
    """The first increment, in (efficiency desc, key) order, whose bytes exceed the budget;
    and the bytes of every increment before it."""
    eff, d_bytes = inc.eff, inc.d_bytes
    found = _bracket(inc, budget, total)
    cand, acc = found if found is not None else (np.arange(len(eff)), 0)
    # acc: bytes of the increments known to come before every candidate.
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
    order = cand[np.lexsort((inc.key(cand), -eff[cand]))]
    cum = acc + np.cumsum(d_bytes[order])
    k = int(np.searchsorted(cum, budget, side="right"))
    return int(order[k]), int(cum[k] - d_bytes[order[k]])


def _before(inc: Increments, index: int, inclusive: bool) -> np.ndarray:
    """Mask of the increments ordered before `index` (and itself, when inclusive)."""
    e = inc.eff[index]
    mask = inc.eff > e
    ties = np.flatnonzero(inc.eff == e)
    k, kt = inc.key(index), inc.key(ties)
    mask[ties[(kt <= k) if inclusive else (kt < k)]] = True
    return mask


def solve(inc: Increments, budget: int | None) -> Choice:
    """Choose every row's option: take increments by efficiency while they fit the budget."""
    total = int(inc.d_bytes.sum())
    if budget is None or total <= budget:
        taken = np.ones(len(inc.eff), dtype=bool)
        crit: int | None = None
        cutoff: float | None = None
        used = total
    else:
        crit, used = _critical(inc, budget, total)
        cutoff = float(inc.eff[crit])
        taken = _before(inc, crit, inclusive=False)
    option = np.full(inc.n_rows, -1, dtype=np.int64)
    # A row's taken steps are a prefix of its hull: its option is that of its last one.
    for s in range(1, int(inc.step.max(initial=0)) + 1):
        t = np.flatnonzero(taken & (inc.step == s))
        option[inc.row[t]] = inc.option[t]
    objective = float(inc.d_value[taken].sum())
    gap = 0.0
    if crit is not None and budget is not None:
        gap = (budget - used) / float(inc.d_bytes[crit]) * float(inc.d_value[crit])
    return Choice(option=option, taken=taken, bytes_used=used, objective=objective,
                  lp_bound=objective + gap, lp_gap=gap, cutoff_eff=cutoff, critical=crit)


def bytes_up_to(inc: Increments, eff: float, key: int) -> int:
    """Bytes of the increments ordered up to (eff, key): more efficient ones, and equally
    efficient ones with a key up to it."""
    ties = np.flatnonzero(inc.eff == eff)
    return int(inc.d_bytes[inc.eff > eff].sum() + inc.d_bytes[ties[inc.key(ties) <= key]].sum())


def budget_to_take(inc: Increments, index: int) -> int:
    """The smallest budget from which increment `index` is taken (all before it, and itself)."""
    return bytes_up_to(inc, float(inc.eff[index]), int(inc.key(index)))


# Chunked selection (the planner's path): the increments of a catalog are made chunk by chunk
# and never held at once. One pass counts the bytes above a window of efficiencies and keeps
# the increments inside it; the critical increment is found among those.

# Histogram buckets: the top bits of an efficiency's float64 pattern (sign, exponent and 8
# mantissa bits: buckets 0.4 % wide), ordered as the efficiencies are (they are >= 0).
HIST_SHIFT = 44
HIST_BUCKETS = 1 << (64 - HIST_SHIFT)


@dataclass(frozen=True)
class Cut:
    """The critical increment: every increment ordered before it is taken, no other."""

    eff: float
    key: int
    bytes_before: int   # bytes of every increment ordered before it
    d_bytes: int
    d_value: float

    def lp_gap(self, budget: int) -> float:
        """LP bound minus the greedy's value: the fraction of the critical increment that fits."""
        return (budget - self.bytes_before) / float(self.d_bytes) * self.d_value


def bucket_of(eff: np.ndarray) -> np.ndarray:
    """Histogram bucket of each efficiency (monotone in the efficiency)."""
    return (np.maximum(eff, 0.0).view(np.uint64) >> np.uint64(HIST_SHIFT)).astype(np.intp)


def bucket_range(bucket: int) -> tuple[float, float]:
    """The smallest and largest efficiency in a histogram bucket."""
    lo = np.array([bucket << HIST_SHIFT], dtype=np.uint64).view(np.float64)[0]
    hi = np.array([((bucket + 1) << HIST_SHIFT) - 1], dtype=np.uint64).view(np.float64)[0]
    return float(lo), float(hi)


def cut_among(eff: np.ndarray, key: np.ndarray, d_bytes: np.ndarray, d_value: np.ndarray,
              bytes_above: int, budget: int) -> Cut | None:
    """The critical increment among candidates, given the bytes of every increment ordered
    before them all; None if the candidates do not hold it (the window missed)."""
    if bytes_above > budget:
        return None
    order = np.lexsort((key, -eff))
    cum = bytes_above + np.cumsum(d_bytes[order])
    k = int(np.searchsorted(cum, budget, side="right"))
    if k >= len(order):
        return None
    i = int(order[k])
    return Cut(eff=float(eff[i]), key=int(key[i]), bytes_before=int(cum[k] - d_bytes[i]),
               d_bytes=int(d_bytes[i]), d_value=float(d_value[i]))


def taken_by(inc: Increments, cut: Cut | None) -> np.ndarray:
    """Which increments the greedy takes, given the critical one (None: all)."""
    if cut is None:
        return np.ones(len(inc.eff), dtype=bool)
    taken = inc.eff > cut.eff
    ties = np.flatnonzero(inc.eff == cut.eff)
    if ties.size:
        taken[ties[inc.key(ties) < cut.key]] = True
    return taken


def options_of(inc: Increments, taken: np.ndarray) -> np.ndarray:
    """Each row's option (-1: none): a row's taken steps are a prefix of its hull."""
    option = np.full(inc.n_rows, -1, dtype=np.int64)
    for s in range(1, int(inc.step.max(initial=0)) + 1):
        t = np.flatnonzero(taken & (inc.step == s))
        option[inc.row[t]] = inc.option[t]
    return option
