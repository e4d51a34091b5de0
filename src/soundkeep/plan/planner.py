"""Make a plan: inputs -> statuses -> tiers under the budget -> phases -> stored with settings."""

from __future__ import annotations

import contextlib
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
from soundkeep.plan import store
from soundkeep.plan.config import PlanSettings, Tier
from soundkeep.plan.listens import listens_per_track
from soundkeep.plan.phases import assign_phases, phase_table
from soundkeep.plan.priority import (
    Inputs,
    rank_order,
    representatives,
    scratch_sql,
    shared_keys,
    update_held,
)
from soundkeep.plan.priority import fingerprint as catalog_fingerprint

# Added to every track's listens when valuing it, so that a track nobody listened to still
# has a (tiny) value: with a budget that fits everything, everything is kept.
LISTEN_EPSILON = 1e-3

# The steps of a plan, in order, as it reports them.
STEPS = CHECK, HELD, RANK, CHOOSE, WRITE, STORE = (
    "checking the catalog for changes", "finding the held files", "ranking the catalog",
    "choosing tiers", "writing the plan", "storing the plan")

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


def status_before_budget(ps: PlanSettings, popularity: np.ndarray, has_listens: np.ndarray,
                         held: np.ndarray, secondary: np.ndarray, usable: np.ndarray,
                         dup_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(status, eligible) before the budget: metadata_only, or skipped (low priority,
    duplicate ISRC), or an error; eligible rows are offered to the budget."""
    code = {s: i for i, s in enumerate(statuses(ps))}
    low = (popularity <= 0) & ~has_listens & ~held & (secondary < ps.min_secondary_priority)
    status = np.full(len(usable), code[METADATA_ONLY], dtype=np.int8)
    status[low] = code[SKIPPED_LOW]
    status[dup_rows] = code[SKIPPED_DUPLICATE]
    status[~usable] = code[ERROR_ZERO_DURATION]
    eligible = usable & ~low
    eligible[dup_rows] = False
    return status, eligible


@dataclass
class Verdicts:
    """What the budget's choice means for each row: tier, size, value, audio kept, missing."""

    tier: np.ndarray       # int8 index into ps.tiers
    est_bytes: np.ndarray  # int64
    value: np.ndarray      # float64 listens x tier weight (0 without audio)
    has_audio: np.ndarray  # bool
    missing: np.ndarray    # bool: audio planned, no file held


def verdicts(ps: PlanSettings, option: np.ndarray, rows: np.ndarray, b: list[np.ndarray],
             vlistens: np.ndarray, status: np.ndarray, distributable: np.ndarray,
             held: np.ndarray, holdings: bool) -> Verdicts:
    """Tiers and sizes from each offered row's option (-1: none); statuses updated in place
    (planned_<tier>, dark where not distributable, missing_audio where no file is held)."""
    n = len(status)
    code = {s: i for i, s in enumerate(statuses(ps))}
    tiers = list(ps.tiers)
    audio = audio_tiers(ps)
    chosen = np.flatnonzero(option >= 0)
    kept_rows = rows[chosen]
    opt = option[chosen]
    tier = np.full(n, tiers.index(ps.empty_tier), dtype=np.int8)
    tier[kept_rows] = np.array([tiers.index(t) for t in audio], dtype=np.int8)[opt]
    est_bytes = np.zeros(n, dtype=np.int64)
    for k, col in enumerate(b):
        pick = opt == k
        est_bytes[kept_rows[pick]] = col[chosen[pick]]
    value = np.zeros(n)
    value[kept_rows] = np.array([t.weight for t in audio])[opt] * (vlistens[kept_rows]
                                                                   + LISTEN_EPSILON)
    has_audio = np.zeros(n, dtype=bool)
    has_audio[kept_rows] = True
    status[kept_rows] = np.array([code[t.status] for t in audio], dtype=np.int8)[opt]
    status[has_audio & ~distributable] = code[DARK]
    missing = has_audio & ~held if holdings else np.zeros(n, dtype=bool)
    status[missing] = code[MISSING_AUDIO]
    return Verdicts(tier, est_bytes, value, has_audio, missing)


def compute(inp: Inputs, ps: PlanSettings, con: duckdb.DuckDBPyConnection,
            summary: bool = True) -> Computed:
    """Decide every track's status, tier, size and phase, the whole catalog at once.

    The reference computation: make_plan gives the same rows in bounded memory (chunks).
    con is used to sort by rank.

    With summary=False the figures are left to comp.summarize(), to run beside the write.
    """
    n = len(inp)
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
    status, eligible = status_before_budget(ps, inp.popularity, inp.has_listens, held,
                                            inp.secondary, usable, dup_rows)
    vlistens = value_listens(listens, dup_rows, rep_rows, rank)

    rows = np.flatnonzero(eligible)
    inc, b = offers(ps, inp.duration_ms[rows], inp.held_bytes[rows], vlistens[rows],
                    rank[rows])
    choice = knapsack.solve(inc, ps.budget_bytes)
    v = verdicts(ps, choice.option, rows, b, vlistens, status, inp.distributable, held,
                 inp.holdings)
    tier, est_bytes, value, has_audio, missing = (v.tier, v.est_bytes, v.value, v.has_audio,
                                                  v.missing)
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


# DuckDB's rows per row group (its default). An insert of whole row groups is stored as it
# is; the part-filled row group ending any other insert is merged with its neighbours by the
# next checkpoints: at 10 M tracks that took 1.1-2.3 s in the plan's own checkpoint and about
# 1.4 s more in the next two, against 0.01 s with whole row groups.
ROW_GROUP_ROWS = 122_880


def _insert_rows(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Append plan rows (one transaction, unless the caller has one open)."""
    # A batch per row group, so that DuckDB reads (and compresses) them on every thread.
    table = pa.Table.from_batches(table.to_batches(max_chunksize=ROW_GROUP_ROWS),
                                 schema=table.schema)
    con.register("_plan_new", table)
    try:
        con.execute("INSERT INTO plan_rows BY NAME SELECT * FROM _plan_new")
    finally:
        con.unregister("_plan_new")


def make_plan(con: duckdb.DuckDBPyConnection, ps: PlanSettings,
              step: Callable[[str], None] | None = None,
              memory_limit: int | None = None) -> PlanResult:
    """Plan the catalog; store it unless the newest plan has the same inputs and settings.
    memory_limit: DuckDB's, in bytes, while planning (plan.memory_limit; None: as it is)."""
    memory = (db.setting(con, "memory_limit", f"'{int(memory_limit)}B'") if memory_limit
              else contextlib.nullcontext())
    with small_pages(), memory:
        return _make_plan(con, ps, step or (lambda _msg: None))


# ---------------------------------------------------------------------------------------------
# The planner's path: chunks of rows in rank order, memory bounded whatever the catalog size.
#
# 1. DuckDB builds a scratch table of every track's inputs stored in rank order, so that
#    rank = rowid + 1 (the sort runs out of core under DuckDB's memory limit).
# 2. The rows that share an ISRC (a small part of the catalog) are resolved in one query:
#    duplicates, the row that keeps their audio, and the listens it stands for.
# 3. The knapsack's critical increment: a systematic sample brackets it in a window of
#    efficiencies; one pass over the chunks counts the bytes above the window and keeps the
#    increments inside it, among which the critical one is found exactly (if the sample
#    missed, a histogram from the same pass gives a window that cannot miss).
# 4. A last pass decides each chunk's tiers, statuses and phases, writes its rows and adds to
#    the summary. Everything per track lives one chunk at a time.

SCRATCH = "_plan_scratch"
# Rows per chunk, and rows in the sample that brackets the critical increment.
CHUNK_ROWS = 1 << 20
SAMPLE_ROWS = 1 << 16
# Half-width of the sample's window, as a share of the sampled increments.
WINDOW_SHARE = 1 / 64

_COLUMNS = ("rowid + 1 AS rank, track_id, popularity, listens, distributable, duration_ms, "
            "held_bytes, secondary, file_key")
_NARROW = "rowid + 1 AS rank, popularity, listens, duration_ms, held_bytes, secondary"


@dataclass
class Isrc:
    """Rows sharing an ISRC, by rank: the duplicates and the rows keeping their audio."""

    dup_rank: np.ndarray      # int64 sorted: ranks of skipped duplicates
    dup_rep_rank: np.ndarray  # int64: rank of the row keeping each one's audio
    dup_rep_tid: np.ndarray   # int64: its track_id
    rep_rank: np.ndarray      # int64 sorted: rows standing for duplicates
    rep_extra: np.ndarray     # float64: the duplicates' listens, summed in rank order
    rep_kept: np.ndarray      # bool: whether that row got audio (filled while writing)


def _lookup(sorted_keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in `values` found in `sorted_keys`, and where in sorted_keys they are."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    pos = np.minimum(np.searchsorted(sorted_keys, values), sorted_keys.size - 1)
    hit = np.flatnonzero(sorted_keys[pos] == values)
    return hit, pos[hit]


def _lookup_run(sorted_keys: np.ndarray, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """_lookup of the consecutive values first .. first + n - 1 (a chunk's ranks): they are
    one slice of sorted_keys, found by two binary searches instead of one per value."""
    lo, hi = np.searchsorted(sorted_keys, [first, first + n])
    return (sorted_keys[lo:hi] - first).astype(np.intp), np.arange(lo, hi, dtype=np.intp)


def _isrc(con: duckdb.DuckDBPyConnection, ps: PlanSettings, n: int, shared_only: bool = False
          ) -> Isrc:
    """The skipped duplicates: rows after the first usable one (in rank order) among those
    sharing an ISRC, if usable themselves and of popularity up to isrc_dedupe_max_popularity.
    shared_only: the scratch table's ISRC hashes are those of shared ISRCs only (a fresh
    isrc_shared, catalog.derived), so none needs counting."""
    usable = "(held_bytes > 0 OR duration_ms > 0)"
    shared = ("" if shared_only else
              f"SEMI JOIN (SELECT isrc_hash FROM {SCRATCH} WHERE isrc_hash IS NOT NULL "
              "GROUP BY isrc_hash HAVING count(*) > 1) k USING (isrc_hash)")
    cols = con.execute(f"""
        WITH s AS (SELECT rowid + 1 AS rank, track_id, isrc_hash, popularity, listens,
                          secondary, {usable} AS usable,
                          CASE WHEN {usable} THEN rowid ELSE rowid + {n} END AS o
                   FROM {SCRATCH} {shared} WHERE isrc_hash IS NOT NULL),
        r AS (SELECT isrc_hash, arg_min(rank, o) AS rep, arg_min(track_id, o) AS rep_tid
              FROM s GROUP BY isrc_hash)
        SELECT s.rank, s.popularity, s.listens, s.secondary, r.rep, r.rep_tid
        FROM s JOIN r USING (isrc_hash)
        WHERE s.rank <> r.rep AND s.usable
          AND s.popularity <= {ps.isrc_dedupe_max_popularity}""").fetchnumpy()
    rank = np.asarray(cols["rank"], dtype=np.int64)
    rep = np.asarray(cols["rep"], dtype=np.int64)
    pop = np.asarray(cols["popularity"], dtype=np.int16)
    d = np.argsort(rank, kind="stable")
    real, has_real = _split_masked(cols["listens"])
    listens = listens_per_track(real[d], has_real[d], pop[d],
                                np.asarray(cols["secondary"], dtype=np.float64)[d],
                                ps.listens, ps.secondary.maximum)
    rep_rank, inv = np.unique(rep[d], return_inverse=True)
    # Summed in rank order of the duplicates (as planner.value_listens does).
    extra = np.bincount(inv, weights=listens, minlength=rep_rank.size)
    return Isrc(dup_rank=rank[d], dup_rep_rank=rep[d],
                dup_rep_tid=np.asarray(cols["rep_tid"], dtype=np.int64)[d],
                rep_rank=rep_rank, rep_extra=extra,
                rep_kept=np.zeros(rep_rank.size, dtype=bool))


def _split_masked(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(col, np.ma.MaskedArray):
        valid = ~np.ma.getmaskarray(col)
        return np.asarray(np.ma.getdata(col), dtype=np.float64), valid
    return np.asarray(col, dtype=np.float64), np.ones(len(col), dtype=bool)


@dataclass
class Chunk:
    """One chunk of rows in rank order, with its knapsack offers."""

    cols: dict[str, Any]
    rank: np.ndarray
    listens: np.ndarray
    has_listens: np.ndarray
    held: np.ndarray
    dup_at: np.ndarray        # rows that are duplicates
    dup_pos: np.ndarray       # their index in Isrc.dup_*
    rep_at: np.ndarray        # rows that stand for duplicates
    rep_pos: np.ndarray       # their index in Isrc.rep_*
    status: np.ndarray        # int8 statuses before the budget (metadata_only or skipped)
    rows: np.ndarray          # rows offered to the budget
    vlistens: np.ndarray      # listens each row's file preserves
    inc: knapsack.Increments
    b: list[np.ndarray]


def _read_chunk(con: duckdb.DuckDBPyConnection, ps: PlanSettings, isrc: Isrc, where: str,
                columns: str) -> Chunk:
    """The chunk of the scratch rows matching `where`."""
    return _chunk_of(con.sql(f"SELECT {columns} FROM {SCRATCH} WHERE {where}").to_arrow_table(),
                     ps, isrc)


def _chunk_of(table: pa.Table, ps: PlanSettings, isrc: Isrc) -> Chunk:
    """A chunk from scratch rows (any order: they are put in rank order here)."""
    rank = np.asarray(table.column("rank").to_numpy(), dtype=np.int64)
    if rank.size > 1 and not bool(np.all(rank[1:] > rank[:-1])):
        by = np.argsort(rank)
        table = table.take(pa.array(by))
        rank = rank[by]
    cols: dict[str, Any] = {}
    for name in table.column_names:
        col = table.column(name)
        if name == "file_key":  # passed on to the plan's rows as it is
            cols[name] = col.combine_chunks()
        elif name == "listens":  # DOUBLE: a null comes out as NaN, no mask needed
            cols[name] = col.to_numpy()
        elif col.null_count:
            cols[name] = np.ma.MaskedArray(col.fill_null(0).to_numpy(),
                                           mask=col.is_null().to_numpy(zero_copy_only=False))
        else:
            cols[name] = col.to_numpy()
    pop = np.asarray(cols["popularity"], dtype=np.int16)
    secondary = np.asarray(cols["secondary"], dtype=np.float64)
    real = np.asarray(cols["listens"], dtype=np.float64)
    has_listens = ~np.isnan(real)
    listens = listens_per_track(real, has_listens, pop, secondary, ps.listens,
                                ps.secondary.maximum)
    duration = np.asarray(cols["duration_ms"], dtype=np.int64)
    held_bytes = np.asarray(cols["held_bytes"], dtype=np.int64)
    held = held_bytes > 0
    usable = held | (duration > 0)
    if rank.size and int(rank[-1]) - int(rank[0]) == rank.size - 1:  # sorted: consecutive
        dup_at, dup_pos = _lookup_run(isrc.dup_rank, int(rank[0]), rank.size)
        rep_at, rep_pos = _lookup_run(isrc.rep_rank, int(rank[0]), rank.size)
    else:
        dup_at, dup_pos = _lookup(isrc.dup_rank, rank)
        rep_at, rep_pos = _lookup(isrc.rep_rank, rank)
    status, eligible = status_before_budget(ps, pop, has_listens, held, secondary, usable,
                                            dup_at)
    vlistens = listens.copy()
    vlistens[rep_at] = listens[rep_at] + isrc.rep_extra[rep_pos]
    rows = np.flatnonzero(eligible)
    inc, b = offers(ps, duration[rows], held_bytes[rows], vlistens[rows], rank[rows])
    cols["popularity"], cols["duration_ms"], cols["held_bytes"] = pop, duration, held_bytes
    return Chunk(cols=cols, rank=rank, listens=listens, has_listens=has_listens, held=held,
                 dup_at=dup_at, dup_pos=dup_pos, rep_at=rep_at, rep_pos=rep_pos,
                 status=status, rows=rows, vlistens=vlistens, inc=inc, b=b)


def _chunks(con: duckdb.DuckDBPyConnection, ps: PlanSettings, isrc: Isrc,
            columns: str) -> Iterator[Chunk]:
    """Every scratch row, in chunks in rank order, from one streamed scan (a query per chunk
    costs several times more). The result stays open on con until the last chunk."""
    reader = con.sql(f"SELECT {columns} FROM {SCRATCH}").to_arrow_reader(CHUNK_ROWS)
    last = 0

    def chunk_of(batches: list[pa.RecordBatch]) -> Chunk:
        nonlocal last
        chunk = _chunk_of(pa.Table.from_batches(batches), ps, isrc)
        if int(chunk.rank[0]) <= last:  # phases and duplicates need rank order
            raise RuntimeError("plan: the scratch table was not read in rank order")
        last = int(chunk.rank[-1])
        return chunk

    try:
        # The reader hands out DuckDB's row groups (about 120 k rows); a chunk gathers
        # CHUNK_ROWS of them, so per-chunk costs stay small and inserts run on every thread.
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            if batch.num_rows:
                pending.append(batch)
                rows += batch.num_rows
            if rows >= CHUNK_ROWS:
                yield chunk_of(pending)
                pending, rows = [], 0
        if rows:
            yield chunk_of(pending)
    finally:
        reader.close()


@dataclass
class _Window:
    """Efficiencies [lo, hi]: increments above hi are taken; those inside are candidates."""

    lo: float
    hi: float
    bytes_above: int = 0
    total: int = 0
    eff: list[np.ndarray] = field(default_factory=list)
    key: list[np.ndarray] = field(default_factory=list)
    d_bytes: list[np.ndarray] = field(default_factory=list)
    d_value: list[np.ndarray] = field(default_factory=list)
    hist: np.ndarray | None = None

    def add(self, inc: knapsack.Increments) -> None:
        """Count a chunk's increments: bytes above, candidates inside, the histogram."""
        above = inc.eff > self.hi
        self.bytes_above += int(inc.d_bytes[above].sum())
        self.total += int(inc.d_bytes.sum())
        inside = np.flatnonzero((inc.eff >= self.lo) & ~above)
        self.eff.append(inc.eff[inside])
        self.key.append(inc.key(inside))
        self.d_bytes.append(inc.d_bytes[inside])
        self.d_value.append(inc.d_value[inside])
        if self.hist is not None and len(inc.eff):
            # Chunk sums stay far below 2^53: exact in float64.
            counts = np.bincount(knapsack.bucket_of(inc.eff), weights=inc.d_bytes,
                                 minlength=knapsack.HIST_BUCKETS)
            self.hist += np.rint(counts).astype(np.int64)

    def cut(self, budget: int) -> knapsack.Cut | None:
        """The critical increment, if this window holds it."""
        if not self.eff:
            return None
        return knapsack.cut_among(np.concatenate(self.eff), np.concatenate(self.key),
                                  np.concatenate(self.d_bytes), np.concatenate(self.d_value),
                                  self.bytes_above, budget)


def _sample_window(con: duckdb.DuckDBPyConnection, ps: PlanSettings, isrc: Isrc, n: int,
                   budget: int) -> _Window:
    """A window of efficiencies likely to hold the critical increment, from every k-th rank."""
    if n <= 4 * SAMPLE_ROWS:
        return _Window(-np.inf, np.inf)
    stride = n // SAMPLE_ROWS
    inc = _read_chunk(con, ps, isrc, f"(rowid + 1) % {stride} = 0", _NARROW).inc
    if len(inc.eff) == 0:
        return _Window(-np.inf, np.inf)
    order = np.argsort(-inc.eff, kind="stable")
    cum = np.cumsum(inc.d_bytes[order]) * float(stride)
    j = int(np.searchsorted(cum, budget))
    margin = int(len(order) * WINDOW_SHARE) + 1
    hi = float(inc.eff[order[j - margin]]) if j - margin >= 0 else np.inf
    lo = float(inc.eff[order[j + margin]]) if j + margin < len(order) else -np.inf
    return _Window(lo, hi)


def choose_cut(con: duckdb.DuckDBPyConnection, ps: PlanSettings, isrc: Isrc, n: int
               ) -> knapsack.Cut | None:
    """The knapsack's critical increment over every chunk (None: everything fits)."""
    budget = ps.budget_bytes
    if budget is None or n == 0:
        return None
    win = _sample_window(con, ps, isrc, n, budget)
    win.hist = np.zeros(knapsack.HIST_BUCKETS, dtype=np.int64)
    for chunk in _chunks(con, ps, isrc, _NARROW):
        win.add(chunk.inc)
    if win.total <= budget:
        return None
    cut = win.cut(budget)
    if cut is not None:
        return cut
    # The sample missed: the histogram's bucket holding the budget's last byte cannot.
    above = np.cumsum(win.hist[::-1])
    k = int(np.searchsorted(above, budget, side="right"))
    bucket = knapsack.HIST_BUCKETS - 1 - k
    again = _Window(*knapsack.bucket_range(bucket))
    for chunk in _chunks(con, ps, isrc, _NARROW):
        again.add(chunk.inc)
    cut = again.cut(budget)
    if cut is None:  # pragma: no cover - the histogram's bucket holds it by construction
        raise RuntimeError("knapsack: the critical increment was not found")
    return cut


@dataclass
class _Totals:
    """The summary's figures, added up chunk by chunk in rank order."""

    n_status: int
    n_tiers: int
    counts: np.ndarray = field(init=False)
    tier_tracks: np.ndarray = field(init=False)
    tier_bytes: np.ndarray = field(init=False)
    listens: float = 0.0
    kept_listens: float = 0.0
    objective: float = 0.0
    tracks_kept: int = 0
    tracks_real: int = 0
    tracks_held: int = 0
    kept_held: int = 0
    dark_kept: int = 0
    bytes_planned: int = 0
    distributed: int = 0
    phases: dict[int, dict[str, int]] = field(default_factory=dict)
    # Phase cutting carries over chunks: bytes phased so far, last slot and phase.
    phase_offset: int = 0
    last_slot: int | None = None
    last_phase: int = 1

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.n_status, dtype=np.int64)
        self.tier_tracks = np.zeros(self.n_tiers, dtype=np.int64)
        self.tier_bytes = np.zeros(self.n_tiers, dtype=np.int64)

    def cut_phases(self, sizes: np.ndarray, bundle: int) -> np.ndarray:
        """Phases of the next distributed tracks in rank order (as phases.assign_phases)."""
        if sizes.size == 0:
            return np.zeros(0, dtype=np.int64)
        slot = (self.phase_offset + np.cumsum(sizes) - sizes) // bundle
        prev = slot[0] if self.last_slot is None else self.last_slot
        phase = self.last_phase + np.cumsum(np.diff(slot, prepend=prev) > 0)
        self.phase_offset += int(sizes.sum())
        self.last_slot, self.last_phase = int(slot[-1]), int(phase[-1])
        return phase

    def add_phases(self, phase: np.ndarray, sizes: np.ndarray, rank: np.ndarray,
                   pop: np.ndarray) -> None:
        """Add distributed tracks (rank order) to the phase table."""
        for ph in np.unique(phase):
            at = np.flatnonzero(phase == ph)
            e = self.phases.get(int(ph))
            if e is None:
                e = self.phases[int(ph)] = {
                    "phase": int(ph), "tracks": 0, "bytes": 0, "first_rank": int(rank[at[0]]),
                    "last_rank": 0, "max_popularity": int(pop[at[0]]), "min_popularity": 0}
            e["tracks"] += int(at.size)
            e["bytes"] += int(sizes[at].sum())
            e["last_rank"] = int(rank[at[-1]])
            e["min_popularity"] = int(pop[at[-1]])


def _decide(chunk: Chunk, ps: PlanSettings, isrc: Isrc, cut: knapsack.Cut | None,
            holdings: bool, tot: _Totals) -> dict[str, Any]:
    """A chunk's tiers, statuses, sizes and phases (and its share of the summary)."""
    n = chunk.rank.size
    option = knapsack.options_of(chunk.inc, knapsack.taken_by(chunk.inc, cut))
    distributable = np.asarray(chunk.cols["distributable"], dtype=bool)
    status = chunk.status
    v = verdicts(ps, option, chunk.rows, chunk.b, chunk.vlistens, status, distributable,
                 chunk.held, holdings)
    tier, est_bytes, value, has_audio, missing = (v.tier, v.est_bytes, v.value, v.has_audio,
                                                  v.missing)
    phased = np.flatnonzero(has_audio & distributable & ~missing)
    phase = np.zeros(n, dtype=np.int64)
    phase[phased] = tot.cut_phases(est_bytes[phased], ps.bundle_bytes)
    pop = chunk.cols["popularity"]
    tot.add_phases(phase[phased], est_bytes[phased], chunk.rank[phased], pop[phased])
    # A row standing for duplicates ranks before them: its verdict is known by theirs.
    isrc.rep_kept[chunk.rep_pos] = has_audio[chunk.rep_at]
    duplicate_of = np.full(n, -1, dtype=np.int64)
    duplicate_of[chunk.dup_at] = isrc.dup_rep_tid[chunk.dup_pos]
    kept_rec = has_audio.copy()
    if chunk.dup_at.size:
        _, rep = _lookup(isrc.rep_rank, isrc.dup_rep_rank[chunk.dup_pos])
        kept_rec[chunk.dup_at] = isrc.rep_kept[rep]

    tot.counts += np.bincount(status, minlength=tot.n_status)
    tot.tier_tracks += np.bincount(tier, minlength=tot.n_tiers)
    tot.tier_bytes += np.bincount(tier, weights=est_bytes, minlength=tot.n_tiers
                                  ).round().astype(np.int64)
    tot.listens += float(chunk.listens.sum())
    tot.kept_listens += float(chunk.listens[kept_rec].sum())
    tot.objective += float(value.sum())
    tot.tracks_kept += int(has_audio.sum())
    tot.tracks_real += int(chunk.has_listens.sum())
    tot.tracks_held += int(chunk.held.sum())
    tot.kept_held += int((has_audio & chunk.held).sum())
    tot.dark_kept += int((has_audio & ~distributable).sum())
    tot.bytes_planned += int(est_bytes.sum())
    tot.distributed += int(est_bytes[phased].sum())
    return {"rank": chunk.rank, "listens": chunk.listens, "tier": tier, "status": status,
            "est_bytes": est_bytes, "phase": phase, "duplicate_of": duplicate_of}


def _plan_table(chunk: Chunk, out: dict[str, Any], plan_id: int) -> pa.Table:
    """The plan_rows of one chunk (tier and status as codes: plan_names names them)."""
    c = chunk.cols
    n = chunk.rank.size
    held_bytes = c["held_bytes"]
    return pa.table({
        "plan_id": pa.array(np.full(n, plan_id, dtype=np.int32)),
        "track_id": pa.array(np.asarray(c["track_id"], dtype=np.int64)),
        "rank": pa.array(out["rank"]),
        "listens_est": pa.array(out["listens"]),
        "priority": pa.array(np.asarray(c["secondary"], dtype=np.float64)),
        "tier_code": pa.array(out["tier"].view(np.uint8)),
        "status_code": pa.array(out["status"].view(np.uint8)),
        "est_bytes": pa.array(out["est_bytes"]),
        "phase": pa.array(out["phase"].astype(np.int32), mask=out["phase"] == 0),
        "duplicate_of": pa.array(out["duplicate_of"], mask=out["duplicate_of"] == -1),
        "duration_ms": pa.array(c["duration_ms"].astype(np.int32)),
        "held_bytes": pa.array(held_bytes, mask=held_bytes == 0),
        "file_key": c["file_key"],
    })


def _final_summary(tot: _Totals, ps: PlanSettings, n: int, cut: knapsack.Cut | None,
                   holdings: bool) -> dict[str, Any]:
    names = statuses(ps)
    eps_total = (tot.listens + LISTEN_EPSILON * n) or 1.0
    gap = cut.lp_gap(ps.budget_bytes) if cut is not None and ps.budget_bytes is not None \
        else 0.0
    summary: dict[str, Any] = {
        "tracks_total": n,
        "budget_bytes": ps.budget_bytes,
        "bytes_planned": tot.bytes_planned,
        "counts_by_status": {s: int(tot.counts[i]) for i, s in enumerate(names)
                             if tot.counts[i]},
        "by_tier": {t.name: {"tracks": int(tot.tier_tracks[i]),
                             "bytes": int(tot.tier_bytes[i])}
                    for i, t in enumerate(ps.tiers)},
        "tracks_kept": tot.tracks_kept,
        "tracks_kept_share": tot.tracks_kept / n if n else 0.0,
        "listens_total": tot.listens,
        "listens_kept_share": tot.kept_listens / tot.listens if tot.listens > 0 else 0.0,
        "listens_weighted_share": tot.objective / eps_total,
        "lp_bound_share": (tot.objective + gap) / eps_total,
        "cutoff_listens_per_mb": None if cut is None else cut.eff * 1e6,
        "tracks_listens_real": tot.tracks_real,
        "holdings": holdings,
        "tracks_held": tot.tracks_held,
        "tracks_kept_held": tot.kept_held,
        "dark_tracks_kept": tot.dark_kept,
        "phases": [tot.phases[k] for k in sorted(tot.phases)],
        "distributed_bytes": tot.distributed,
    }
    if not holdings:
        summary["note"] = ("the archive holds no audio yet: tracks planned for audio are "
                           "not marked missing_audio; scan and link audio, then plan again")
    return summary


def _make_plan(con: duckdb.DuckDBPyConnection, ps: PlanSettings,
               say: Callable[[str], None]) -> PlanResult:
    say(CHECK)
    fp = catalog_fingerprint(con)
    fingerprint, fresh = fp.digest, fp.fresh
    settings_json = _settings_json(ps)
    rows = con.execute(
        "SELECT plan_id, settings_json, catalog_fingerprint, summary_json FROM plans "
        "ORDER BY plan_id DESC LIMIT 1").fetchall()
    latest = rows[0] if rows else None
    if latest and latest[1] == settings_json and latest[2] == fingerprint:
        # Same inputs, same settings: the stored plan is this plan (plans are deterministic).
        return PlanResult(plan_id=int(latest[0]), reused=True, summary=json.loads(latest[3]))
    say(HELD)
    update_held(con, fp.holdings)
    say(RANK)
    real = con.execute("SELECT count(listens) > 0 FROM tracks").fetchall()[0][0]
    # The scratch table must be stored in its ORDER BY's order (rank = rowid + 1), and
    # chunks read back in it: archives open with preserve_insertion_order off.
    with db.setting(con, "preserve_insertion_order", "true"):
        try:
            con.execute(scratch_sql(ps, SCRATCH, bool(real), derived_columns=fresh))
            plan_id = int(latest[0]) + 1 if latest else 1
            result = _plan_scratch(con, ps, plan_id, settings_json, fingerprint, fresh, say)
        finally:
            con.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
    # DuckDB compresses the new rows once more when it checkpoints them, which it would do
    # on closing the archive anyway: done here, the plan's cost is in its steps.
    say(STORE)
    con.execute("CHECKPOINT")
    return result


def _write_chunks(con: duckdb.DuckDBPyConnection, out: duckdb.DuckDBPyConnection,
                  ps: PlanSettings, isrc: Isrc, cut: knapsack.Cut | None, holdings: bool,
                  tot: _Totals, plan_id: int) -> None:
    """Decide every chunk and insert its rows; DuckDB inserts one chunk (on `out`, a second
    connection) while con streams the next and numpy decides it. Each insert but the last is
    whole row groups (ROW_GROUP_ROWS): the rows past them wait for the next chunk's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        writing = None
        carry: pa.Table | None = None
        for chunk in _chunks(con, ps, isrc, _COLUMNS):
            table = _plan_table(chunk, _decide(chunk, ps, isrc, cut, holdings, tot), plan_id)
            if carry is not None:
                table = pa.concat_tables([carry, table])
            whole = table.num_rows - table.num_rows % ROW_GROUP_ROWS
            table, carry = table.slice(0, whole), table.slice(whole)
            if writing is not None:
                writing.result()
            writing = pool.submit(_insert_rows, out, table) if whole else None
        if writing is not None:
            writing.result()
        if carry is not None and carry.num_rows:
            _insert_rows(out, carry)


def _forget_rows(out: duckdb.DuckDBPyConnection, plan_id: int) -> None:
    """Remove the rows of a plan that failed while being written (a kill skips this: the
    next run removes them)."""
    with contextlib.suppress(duckdb.Error):
        store.forget_unfinished(out, plan_id)


def _plan_scratch(con: duckdb.DuckDBPyConnection, ps: PlanSettings, plan_id: int,
                  settings_json: str, fingerprint: str, fresh: bool,
                  say: Callable[[str], None]) -> PlanResult:
    n = int(con.execute(f"SELECT count(*) FROM {SCRATCH}").fetchall()[0][0])
    holdings = bool(con.execute("SELECT count(*) > 0 FROM audio_files").fetchall()[0][0])
    say(CHOOSE)
    isrc = _isrc(con, ps, n, shared_only=fresh)
    cut = choose_cut(con, ps, isrc, n)
    say(WRITE)
    tot = _Totals(n_status=len(statuses(ps)), n_tiers=len(ps.tiers))
    # The plan's rows are written on a second connection (the scratch table, a temporary
    # one, is read on con meanwhile), a chunk per transaction: one transaction holding them
    # all kept every row in memory until its commit (about 70 bytes a track). A plan exists
    # once its `plans` row and the names of its codes do, written last, together; rows of a
    # plan that never got them (a killed run) are invisible to every reader (the view
    # plan_tracks joins the names), and removed here before writing.
    out = con.cursor()
    try:
        store.forget_unfinished(out, plan_id)
        try:
            _write_chunks(con, out, ps, isrc, cut, holdings, tot, plan_id)
            summary = {"plan_id": plan_id, **_final_summary(tot, ps, n, cut, holdings),
                       "derived_columns_fresh": fresh}
            if not fresh:
                summary["hint"] = ("what tracks keep of their artists and releases is "
                                   "missing or out of date, so the plan made it itself: "
                                   "`soundkeep refresh` first plans faster")
            with db.transaction(out):
                out.execute(
                    "INSERT INTO plans (plan_id, created_at, settings_json, "
                    "catalog_fingerprint, budget_bytes, summary_json) VALUES (?, ?, ?, ?, ?, ?)",
                    [plan_id, db.now(), settings_json, fingerprint, ps.budget_bytes,
                     json.dumps(summary, sort_keys=True)])
                store.write_names(out, plan_id, [t.name for t in ps.tiers], statuses(ps))
                store.forget_plans(out, plan_id - ps.keep_plans)
        except BaseException:
            _forget_rows(out, plan_id)
            raise
    finally:
        out.close()
    return PlanResult(plan_id=plan_id, reused=False, summary=summary)
