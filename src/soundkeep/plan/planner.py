"""Make a plan: inputs -> statuses -> tiers under the budget -> phases -> stored with settings."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import numpy._core.multiarray as np_multiarray
import pyarrow as pa

from soundkeep import db
from soundkeep.plan import budget as knapsack
from soundkeep.plan.config import PlanSettings, Tier
from soundkeep.plan.listens import listens_per_track
from soundkeep.plan.phases import assign_phases, phase_table
from soundkeep.plan.priority import (
    Inputs,
    load_inputs,
    rank_order,
    representatives,
    shared_keys,
)

# Added to every track's listens when valuing it, so that a track nobody listened to still
# has a (tiny) value: with a budget that fits everything, everything is kept.
LISTEN_EPSILON = 1e-3

# Statuses that do not depend on the tiers; a kept track's status is planned_<tier>.
ERROR_ZERO_DURATION = "error_zero_duration"
SKIPPED_DUPLICATE = "skipped_duplicate_isrc"
SKIPPED_LOW = "skipped_low_priority"
METADATA_ONLY = "metadata_only"
MISSING_AUDIO = "missing_audio"
DARK = "dark"
# Statuses of tracks that were never offered to the budget.
NOT_ELIGIBLE = (ERROR_ZERO_DURATION, SKIPPED_DUPLICATE, SKIPPED_LOW)


def statuses(ps: PlanSettings) -> list[str]:
    """Every status a plan with these settings can give, in a fixed order."""
    planned = [t.status for t in ps.tiers if t.has_audio]
    return [*planned, DARK, MISSING_AUDIO, METADATA_ONLY, SKIPPED_DUPLICATE, SKIPPED_LOW,
            ERROR_ZERO_DURATION]


def audio_tiers(ps: PlanSettings) -> list[Tier]:
    """The tiers that keep audio, in configured order (option k of the knapsack is tier k)."""
    return [t for t in ps.tiers if t.has_audio]


Options = tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]


def tier_options(ps: PlanSettings, duration_ms: np.ndarray, held_bytes: np.ndarray,
                 value_listens: np.ndarray) -> Options:
    """Bytes, value and availability of each audio tier (one column per tier) for each track.

    'original' costs the held file's size, or duration x its assumed bitrate without one;
    an encoded tier costs duration x its bitrate. Value = tier weight x listens.
    """
    held = held_bytes > 0
    any_held = bool(held.any())
    has_duration = duration_ms > 0
    value = value_listens + LISTEN_EPSILON
    ms = np.asarray(duration_ms, dtype=np.int64)
    b, v, valid = [], [], []
    for t in audio_tiers(ps):
        rate = float(t.bitrate_kbps or 0.0)
        # bytes = ms x kbit/s / 8, rounded (half up); in integers for whole kbit/s.
        if rate.is_integer():
            by_duration = ms * int(rate)
            by_duration += 4
            by_duration >>= 3
        else:
            by_duration = np.floor(ms * (rate / 8.0) + 0.5).astype(np.int64)
        np.maximum(by_duration, 1, out=by_duration)
        if t.codec == "original" and any_held:
            b.append(np.where(held, held_bytes, by_duration))
            valid.append(held | has_duration)
        else:
            b.append(by_duration)
            valid.append(has_duration)
        v.append(t.weight * value)
    return b, v, valid


def offers(ps: PlanSettings, duration_ms: np.ndarray, held_bytes: np.ndarray,
           value_listens: np.ndarray, rank: np.ndarray
           ) -> tuple[knapsack.Increments, list[np.ndarray]]:
    """The knapsack offers of these tracks (and each tier's bytes, one column per tier)."""
    b, v, valid = tier_options(ps, duration_ms, held_bytes, value_listens)
    tiers = audio_tiers(ps)
    # Without a held file every tier costs duration x bitrate: all share one hull shape.
    template = ([float(t.bitrate_kbps or 0.0) for t in tiers], [t.weight for t in tiers])
    inc = knapsack.hull_increments(b, v, valid, rank, uniform=(held_bytes <= 0)
                                   & (duration_ms > 0), template=template)
    return inc, b


@dataclass
class Computed:
    """A plan's per-track arrays (query order; `order` lists rows in rank order) and summary."""

    inputs: Inputs
    listens: np.ndarray       # float64 listens (real or estimated)
    order: np.ndarray         # int64 row indices in rank order
    rank: np.ndarray          # int64 1 = most important
    tier: np.ndarray          # int8 index into ps.tiers
    status: np.ndarray        # int8 index into statuses(ps)
    est_bytes: np.ndarray     # int64
    phase: np.ndarray         # int64, 0 = not distributed
    duplicate_of: np.ndarray  # int64 track_id, or -1
    summary: dict[str, Any] = field(default_factory=dict)
    summarize: Callable[[], dict[str, Any]] = field(default=lambda: {}, repr=False)


def eligible_mask(status: np.ndarray, ps: PlanSettings) -> np.ndarray:
    """Rows that were offered to the budget (every status but the skipped and the errors)."""
    names = statuses(ps)
    out = np.ones(len(status), dtype=bool)
    for s in NOT_ELIGIBLE:
        out &= status != names.index(s)
    return out


def value_listens(listens: np.ndarray, dup_rows: np.ndarray, rep_rows: np.ndarray,
                  rank: np.ndarray) -> np.ndarray:
    """Listens a track's file preserves: its own plus those of the duplicates it stands for.

    Duplicates are added in rank order, so the sums, and the plan, are the same to the last
    bit whatever order the rows were read in.
    """
    by_rank = np.argsort(rank[dup_rows], kind="stable")
    return listens + np.bincount(rep_rows[by_rank], weights=listens[dup_rows[by_rank]],
                                 minlength=len(listens))


def compute(inp: Inputs, ps: PlanSettings, con: duckdb.DuckDBPyConnection,
            summary: bool = True) -> Computed:
    """Decide every track's status, tier, size and phase (con is used to sort by rank).

    With summary=False the figures are left to comp.summarize(), to run beside the write.
    """
    n = len(inp)
    names = statuses(ps)
    code = {s: i for i, s in enumerate(names)}
    listens = listens_per_track(inp.listens, inp.has_listens, inp.popularity, inp.secondary,
                                ps.listens, ps.secondary.maximum)
    # The rank sort runs in DuckDB (which lets go of the GIL) while numpy finds shared ISRCs.
    with ThreadPoolExecutor(max_workers=1) as pool:
        sorting = pool.submit(rank_order, con, inp.popularity, listens, inp.secondary,
                              inp.track_id, bool(inp.has_listens.any()))
        dupkey, has_dupkey = shared_keys(inp.isrc_hash, inp.has_isrc)
        order = sorting.result()
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)

    held = inp.held_bytes > 0
    usable = held | (inp.duration_ms > 0)
    shared, rep = representatives(con, dupkey, has_dupkey, usable, rank)
    is_dup = ((rep != shared) & usable[shared]
              & (inp.popularity[shared] <= ps.isrc_dedupe_max_popularity))
    dup_rows, rep_rows = shared[is_dup], rep[is_dup]
    dup = np.zeros(n, dtype=bool)
    dup[dup_rows] = True
    low = ((inp.popularity <= 0) & ~inp.has_listens & ~held
           & (inp.secondary < ps.min_secondary_priority))
    status = np.full(n, code[METADATA_ONLY], dtype=np.int8)
    status[low] = code[SKIPPED_LOW]
    status[dup_rows] = code[SKIPPED_DUPLICATE]
    status[~usable] = code[ERROR_ZERO_DURATION]
    eligible = usable & ~dup & ~low
    vlistens = value_listens(listens, dup_rows, rep_rows, rank)

    rows = np.flatnonzero(eligible)
    inc, b = offers(ps, inp.duration_ms[rows], inp.held_bytes[rows], vlistens[rows],
                    rank[rows])
    choice = knapsack.solve(inc, ps.budget_bytes)

    tiers = list(ps.tiers)
    audio = audio_tiers(ps)
    audio_index = np.array([tiers.index(t) for t in audio], dtype=np.int64)
    tier = np.full(n, tiers.index(ps.empty_tier), dtype=np.int8)
    est_bytes = np.zeros(n, dtype=np.int64)
    chosen = np.flatnonzero(choice.option >= 0)
    kept_rows = rows[chosen]
    opt = choice.option[chosen]
    tier[kept_rows] = audio_index[opt]
    for k, col in enumerate(b):
        pick = opt == k
        est_bytes[kept_rows[pick]] = col[chosen[pick]]
    weight = np.array([t.weight for t in audio])
    value = np.zeros(n)
    value[kept_rows] = weight[opt] * (vlistens[kept_rows] + LISTEN_EPSILON)

    has_audio = np.zeros(n, dtype=bool)
    has_audio[kept_rows] = True
    planned_code = np.array([code[t.status] for t in audio], dtype=np.int8)
    status[kept_rows] = planned_code[opt]
    status[has_audio & ~inp.distributable] = code[DARK]
    missing = has_audio & ~held if inp.holdings else np.zeros(n, dtype=bool)
    status[missing] = code[MISSING_AUDIO]
    in_phase = has_audio & inp.distributable & ~missing
    phased = order[in_phase[order]]           # distributed rows, in rank order
    phase = np.zeros(n, dtype=np.int64)
    phase[phased] = assign_phases(est_bytes[phased], ps.bundle_bytes)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    duplicate_of[dup_rows] = inp.track_id[rep_rows]

    comp = Computed(inputs=inp, listens=listens, order=order, rank=rank, tier=tier,
                    status=status, est_bytes=est_bytes, phase=phase, duplicate_of=duplicate_of)
    kept_rec = has_audio.copy()
    kept_rec[dup_rows] = has_audio[rep_rows]
    comp.summarize = lambda: _summary(comp, ps, choice, value, has_audio, kept_rec, phased)
    if summary:
        comp.summary = comp.summarize()
    return comp


def _summary(c: Computed, ps: PlanSettings, choice: knapsack.Choice, value: np.ndarray,
             has_audio: np.ndarray, kept_rec: np.ndarray, phased: np.ndarray,
             ) -> dict[str, Any]:
    inp = c.inputs
    n = len(inp)
    names = statuses(ps)
    counts = np.bincount(c.status, minlength=len(names))
    tier_tracks = np.bincount(c.tier, minlength=len(ps.tiers))
    tier_bytes = np.bincount(c.tier, weights=c.est_bytes, minlength=len(ps.tiers))
    # Sums in rank order, so the same plan gives the same figures to the last digit.
    listens_ranked = c.listens[c.order]
    total = float(listens_ranked.sum())
    kept_listens = float(listens_ranked[kept_rec[c.order]].sum())
    objective = float(value[c.order].sum())
    held = inp.held_bytes > 0
    eps_total = (total + LISTEN_EPSILON * n) or 1.0
    summary: dict[str, Any] = {
        "tracks_total": n,
        "budget_bytes": ps.budget_bytes,
        "bytes_planned": int(c.est_bytes.sum()),
        "counts_by_status": {s: int(counts[i]) for i, s in enumerate(names) if counts[i]},
        "by_tier": {t.name: {"tracks": int(tier_tracks[i]), "bytes": int(tier_bytes[i])}
                    for i, t in enumerate(ps.tiers)},
        "tracks_kept": int(has_audio.sum()),
        "tracks_kept_share": float(has_audio.sum() / n) if n else 0.0,
        "listens_total": total,
        "listens_kept_share": kept_listens / total if total > 0 else 0.0,
        # The objective: listens x tier weight, as a share of all listens; and the LP bound.
        "listens_weighted_share": objective / eps_total,
        "lp_bound_share": (objective + choice.lp_gap) / eps_total,
        "cutoff_listens_per_mb": (None if choice.cutoff_eff is None
                                  else choice.cutoff_eff * 1e6),
        "tracks_listens_real": int(inp.has_listens.sum()),
        "holdings": inp.holdings,
        "tracks_held": int(held.sum()),
        "tracks_kept_held": int((has_audio & held).sum()),
        "dark_tracks_kept": int((has_audio & ~inp.distributable).sum()),
        "phases": phase_table(c.phase[phased], c.est_bytes[phased], c.rank[phased],
                              inp.popularity[phased]),
        "distributed_bytes": int(c.est_bytes[phased].sum()),
    }
    if not inp.holdings:
        summary["note"] = ("the archive holds no audio yet: tracks planned for audio are "
                           "not marked missing_audio; scan and link audio, then plan again")
    return summary


@dataclass
class PlanResult:
    """What `soundkeep plan` did."""

    plan_id: int
    reused: bool
    summary: dict[str, Any]


def _settings_json(ps: PlanSettings) -> str:
    return json.dumps(ps.as_dict(), sort_keys=True)


def _plan_table(c: Computed, ps: PlanSettings, plan_id: int) -> pa.Table:
    inp = c.inputs
    n = len(inp)
    names = statuses(ps)
    tier_names = pa.array([t.name for t in ps.tiers])
    return pa.table({
        "plan_id": pa.array(np.full(n, plan_id, dtype=np.int32)),
        "track_id": pa.array(inp.track_id),
        "rank": pa.array(c.rank),
        "listens_est": pa.array(c.listens),
        "priority": pa.array(inp.secondary),
        "tier": pa.DictionaryArray.from_arrays(pa.array(c.tier), tier_names),
        "status": pa.DictionaryArray.from_arrays(pa.array(c.status), pa.array(names)),
        "est_bytes": pa.array(c.est_bytes),
        "phase": pa.array(c.phase.astype(np.int32), mask=c.phase == 0),
        "duplicate_of": pa.array(c.duplicate_of, mask=c.duplicate_of == -1),
        "duration_ms": pa.array(inp.duration_ms.astype(np.int32)),
        "held_bytes": pa.array(inp.held_bytes, mask=inp.held_bytes == 0),
        "sha256": inp.sha256,
    })


@contextmanager
def small_pages() -> Iterator[None]:
    """Let numpy back its arrays with ordinary pages while planning.

    numpy asks for transparent huge pages on large arrays; a fresh process touching GBs of
    them makes the kernel compact memory on every first fault, which measured 2-3x slower
    than the arithmetic itself here. The plan touches each array a few times only, so small
    pages win. The setting is restored afterwards.
    """
    setter = getattr(np_multiarray, "_set_madvise_hugepage", None)
    previous = setter(False) if setter else None
    try:
        yield
    finally:
        if setter and previous is not None:
            setter(previous)


def _insert_rows(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    # Several batches, so that DuckDB reads (and compresses) them on every thread.
    table = pa.Table.from_batches(table.to_batches(max_chunksize=1 << 20),
                                 schema=table.schema)
    con.register("_plan_new", table)
    try:
        con.execute("INSERT INTO plan_tracks BY NAME SELECT * FROM _plan_new")
    finally:
        con.unregister("_plan_new")


def make_plan(con: duckdb.DuckDBPyConnection, ps: PlanSettings,
              step: Callable[[str], None] | None = None) -> PlanResult:
    """Plan the catalog; store it unless the newest plan has the same inputs and settings."""
    with small_pages():
        return _make_plan(con, ps, step or (lambda _msg: None))


def _make_plan(con: duckdb.DuckDBPyConnection, ps: PlanSettings,
               say: Callable[[str], None]) -> PlanResult:
    say("reading the catalog")
    inp = load_inputs(con, ps)
    settings_json = _settings_json(ps)
    rows = con.execute(
        "SELECT plan_id, settings_json, catalog_fingerprint, summary_json FROM plans "
        "ORDER BY plan_id DESC LIMIT 1").fetchall()
    latest = rows[0] if rows else None
    if latest and latest[1] == settings_json and latest[2] == inp.fingerprint:
        # Same inputs, same settings: the stored plan is this plan (plans are deterministic).
        return PlanResult(plan_id=int(latest[0]), reused=True, summary=json.loads(latest[3]))
    say("choosing tiers")
    comp = compute(inp, ps, con, summary=False)
    say("writing the plan")
    plan_id = int(latest[0]) + 1 if latest else 1
    table = _plan_table(comp, ps, plan_id)
    con.execute("BEGIN TRANSACTION")
    try:
        # DuckDB writes the rows (without the GIL) while numpy sums up the figures.
        with ThreadPoolExecutor(max_workers=1) as pool:
            writing = pool.submit(_insert_rows, con, table)
            summary = {"plan_id": plan_id, **comp.summarize()}
            writing.result()
        con.execute(
            "INSERT INTO plans (plan_id, created_at, settings_json, catalog_fingerprint, "
            "budget_bytes, summary_json) VALUES (?, ?, ?, ?, ?, ?)",
            [plan_id, db.now(), settings_json, inp.fingerprint, ps.budget_bytes,
             json.dumps(summary, sort_keys=True)])
        con.execute("DELETE FROM plan_tracks WHERE plan_id <= ?", [plan_id - ps.keep_plans])
        con.execute("DELETE FROM plans WHERE plan_id <= ?", [plan_id - ps.keep_plans])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return PlanResult(plan_id=plan_id, reused=False, summary=summary)
