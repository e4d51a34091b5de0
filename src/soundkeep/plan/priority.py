"""Priority and planning inputs: what the plan needs of every track, read in one query.

Rank: popularity first, then listens (real, or estimated: for popularity 0 that is the
secondary priority of the reference design), then the secondary priority, then track_id.
One copy per ISRC: among the rows sharing an ISRC, the first usable row in rank order is the
representative; the plan decides which of the others are skipped as its duplicates.

The planner (make_plan) has DuckDB build a scratch table of every input in rank order
(scratch_sql) and reads it in chunks. load_inputs / rank_order hold a whole catalog in
memory: they serve the whole-catalog reference computation (planner.compute) that the tests
compare the chunked planner with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from soundkeep import db
from soundkeep.catalog import derived
from soundkeep.plan.config import PlanSettings
from soundkeep.plan.listens import listens_at
from soundkeep.plan.store import FILE_PREFERENCE

_CHUNK = 1 << 20
_BUCKETS = 1 << 24


@dataclass
class Inputs:
    """Planning inputs as numpy arrays, one entry per track (query order)."""

    track_id: np.ndarray       # int64
    popularity: np.ndarray     # int16 (NULL -> 0)
    listens: np.ndarray        # float64 real listens (NaN when absent)
    has_listens: np.ndarray    # bool
    secondary: np.ndarray      # float64 secondary priority
    duration_ms: np.ndarray    # int64 (0 when unknown); the held file's when one is held
    held_bytes: np.ndarray     # int64 (0 when no file is held)
    file_key: pa.Array         # uint64: the held file's key (audio_files.file_key; null: none)
    distributable: np.ndarray  # bool
    isrc_hash: np.ndarray      # uint64 64-bit hash of the ISRC (0 when has_isrc is false)
    has_isrc: np.ndarray       # bool
    fingerprint: str           # order-independent hash of everything above
    holdings: bool             # whether the archive holds any audio at all

    def __len__(self) -> int:
        return len(self.track_id)


def secondary_sql(ps: PlanSettings, art_pop: str, rel_pop: str, followers: str) -> str:
    """The secondary priority formula as a SQL expression over three columns."""
    s = ps.secondary
    return (f"({s.artist_popularity!r} * coalesce({art_pop}, 0)"
            f" + {s.release_popularity!r} * coalesce({rel_pop}, 0)"
            f" + {s.followers_per_decade!r} * log10(least({s.followers_cap!r},"
            f" greatest(coalesce({followers}, 0), 0) + 1)))")


# Each linked track's file (store.FILE_PREFERENCE, then the smallest key: only two files of
# one track with the same 64 bits would tie). Links and files are joined on their stored key
# and then the sha256 (exact), and the window orders by the key, not the text: at 10 M tracks
# with 4 M files held 0.72 s where the join on the sha256 alone, the key made for the joined
# files, took 0.97 s (100 M: 10.8 s and 11.8 s; with the sha256 in the window's order 31.5 s).
_HELD = f"""
SELECT track_id, file_key, size, duration_ms FROM (
    SELECT f.*, row_number() OVER (PARTITION BY f.track_id
                                   ORDER BY {FILE_PREFERENCE}, f.file_key) AS pick
    FROM (SELECT l.track_id, f.file_key, f.size, f.duration_ms, f.bitrate
          FROM audio_links l JOIN audio_files f
            ON f.file_key = l.file_key AND f.sha256 = l.sha256
          WHERE l.track_id IS NOT NULL AND f.size > 0) f
) WHERE pick = 1"""

# The holdings, as the plan reads them: every column _HELD reads, the key standing for the
# sha256 it is made from (only two files sharing their first 64 bits could tell them apart;
# hashing the text was nine tenths of the digest's cost: 0.31 s at 10 M tracks, 4 M files).
_HOLDINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("audio_links", ("track_id, file_key",)),
    ("audio_files", ("file_key, size, duration_ms, bitrate",)),
)

# Where the plan reads each held track's file: _HELD, made again only when the holdings
# changed since (plan migration 5), as most plans are made of the same holdings with other
# settings. The meta key names what it was made from: the holdings' digest and the query.
HELD_TABLE = "plan_held"
HELD_META = "plan.held_digest"
_HELD_TAG = hashlib.sha1(_HELD.encode()).hexdigest()[:12]


def update_held(con: duckdb.DuckDBPyConnection, holdings: str) -> bool:
    """Make plan_held anew unless it was made from these holdings (their digest, as
    Fingerprint.holdings) by this version of the query; whether it was. One transaction: a
    kill leaves the old table with its digest, which the next plan finds out of date. (The
    digest is the fingerprint's, taken before: nothing else writes while a plan runs.)"""
    made_from = f"{holdings}:{_HELD_TAG}"
    if db.get_meta(con, HELD_META) == made_from:
        return False
    with db.transaction(con):
        con.execute(f"DELETE FROM {HELD_TABLE}")
        con.execute(f"INSERT INTO {HELD_TABLE} {_HELD}")
        db.set_meta(con, HELD_META, made_from)
    return True


def _query(ps: PlanSettings, with_key: bool = False, derived_columns: bool = False,
           held: str = HELD_TABLE) -> str:
    """Every track's inputs; with derived_columns, what the plan needs of its artists and
    release read from the track's own row (catalog.derived), else made from them here; each
    held track's file from `held` (a relation like plan_held)."""
    if derived_columns:
        sec = secondary_sql(ps, "t.artist_popularity", "t.release_popularity",
                            "t.artist_followers")
        maxima, joins = "", ""
    else:
        sec = secondary_sql(ps, "ta.pop", "r.popularity", "ta.fol")
        maxima = f"\nWITH ta AS ({derived.MAXIMA_SQL})"
        joins = ("LEFT JOIN ta ON ta.track_id = t.track_id\n"
                 "LEFT JOIN releases r ON r.release_id = t.release_id")
    key = ",\n       h.file_key" if with_key else ""
    # The planner groups the rows sharing an ISRC hash: with derived columns, only those
    # the refresh found shared are hashed.
    isrc = "t.isrc_shared" if derived_columns else "t.isrc IS NOT NULL"
    return f"""{maxima}
SELECT t.track_id,
       coalesce(t.popularity, 0)::SMALLINT AS popularity,
       t.listens::DOUBLE AS listens,
       coalesce(t.distributable, false) AS distributable,
       greatest(coalesce(h.duration_ms, t.duration_ms, 0), 0)::INTEGER AS duration_ms,
       coalesce(h.size, 0)::BIGINT AS held_bytes,
       {sec} AS secondary,
       CASE WHEN {isrc} THEN hash(t.isrc) END AS isrc_hash{key}
FROM tracks t
{joins}
LEFT JOIN {held} h ON h.track_id = t.track_id
"""


# What a plan reads of each table (a plan is made again only when one of these changed):
# the tables the derived columns come from (catalog.derived.SOURCES, first, with tracks'
# other columns beside: the ISRC is among the sources), then the holdings.
_TRACK_COLUMNS = "track_id, popularity, listens, distributable, duration_ms"
_DIGESTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tracks", (*derived.SOURCES[0][1], _TRACK_COLUMNS)),
    *derived.SOURCES[1:],
    *_HOLDINGS,
)


# Threads for the fingerprint's scans at least: they are the plan's first read of the
# catalog, from disk when it is not in the page cache, where more reads in flight than cores
# are faster (10 M tracks, cold: 1.0-1.1 s with 8 threads, 1.25-1.5 s with 2).
READ_THREADS = 8


@dataclass(frozen=True)
class Fingerprint:
    """What a plan reads, as digests."""

    digest: str     # everything (stored with the plan: same digest and settings, same plan)
    fresh: bool     # whether the catalog's derived columns are up to date
    holdings: str   # the holdings alone (what plan_held is made from)


def fingerprint(con: duckdb.DuckDBPyConnection) -> Fingerprint:
    """An order-independent digest of everything a plan reads (db.digests: one scan of each
    table, without joins), whether the catalog's derived columns are fresh, and the
    holdings' digest."""
    threads = int(db.scalar(con, "SELECT current_setting('threads')"))
    with db.setting(con, "threads", str(max(threads, READ_THREADS))):
        digests = db.digests(con, _DIGESTED)
    held_tables = {table for table, _ in _HOLDINGS}
    holdings = ":".join(v for (table, _), v in digests.items() if table in held_tables)
    return Fingerprint(digest=":".join(digests.values()),
                       fresh=derived.is_fresh(con, digests), holdings=holdings)


def read_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run a query into an Arrow table on a cursor (a result left open on con is no matter)."""
    cur = con.cursor()
    try:
        return cur.sql(sql).to_arrow_table()
    finally:
        cur.close()


def _read_numpy(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, np.ndarray]:
    cur = con.cursor()
    try:
        return cur.sql(sql).fetchnumpy()
    finally:
        cur.close()


def _split(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values (writable where NULL) and validity of a column from fetchnumpy (maybe masked)."""
    if isinstance(col, np.ma.MaskedArray):
        valid = ~np.ma.getmaskarray(col)
        return np.ma.getdata(col).copy() if not valid.all() else np.ma.getdata(col), valid
    return col, np.ones(len(col), dtype=bool)


def shared_keys(keys: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The keys (64-bit ISRC hashes) that occur on more than one row, and where they do.

    One sort finds the repeated keys; a flag per bucket of their low 24 bits rules out
    almost every other row at once, and the few left are looked up exactly. Far cheaper than
    grouping the ISRC strings; a 64-bit collision between two of 256 M ISRCs has a chance of
    about 1 in 500.
    """
    shared = np.zeros(len(keys), dtype=bool)
    rows = np.flatnonzero(present)
    if rows.size > 1:
        k = keys[rows]
        s = np.sort(k)
        repeated = np.unique(s[1:][s[1:] == s[:-1]])
        if repeated.size:
            low = np.uint64(_BUCKETS - 1)
            flag = np.zeros(_BUCKETS, dtype=bool)
            flag[(repeated & low).astype(np.intp)] = True
            maybe = np.flatnonzero(flag[(k & low).astype(np.intp)])
            km = k[maybe]
            pos = np.minimum(np.searchsorted(repeated, km), repeated.size - 1)
            shared[rows[maybe[repeated[pos] == km]]] = True
    return np.where(shared, keys, np.uint64(0)), shared


def load_inputs(con: duckdb.DuckDBPyConnection, ps: PlanSettings) -> Inputs:
    """Run the input query and return every track's inputs as arrays (the held files found
    here, not read from plan_held: this is the reference the planner is tested against)."""
    cols = _read_numpy(con, _query(ps, with_key=True, held=f"({_HELD})"))
    listens, has_listens = _split(cols["listens"])
    if not has_listens.all():
        listens[~has_listens] = np.nan
    isrc_hash, has_isrc = _split(cols["isrc_hash"])
    if not has_isrc.all():
        isrc_hash[~has_isrc] = 0
    file_key, has_key = _split(cols["file_key"])
    track_id = np.asarray(cols["track_id"], dtype=np.int64)
    held_bytes = np.asarray(cols["held_bytes"], dtype=np.int64)
    holdings = con.execute("SELECT count(*) > 0 FROM audio_files").fetchall()[0][0]
    return Inputs(
        track_id=track_id,
        popularity=np.asarray(cols["popularity"], dtype=np.int16),
        listens=np.asarray(listens, dtype=np.float64),
        has_listens=has_listens,
        secondary=np.asarray(cols["secondary"], dtype=np.float64),
        duration_ms=np.asarray(cols["duration_ms"], dtype=np.int64),
        held_bytes=held_bytes,
        file_key=pa.array(file_key, type=pa.uint64(), mask=~has_key),
        distributable=np.asarray(cols["distributable"], dtype=bool),
        isrc_hash=np.asarray(isrc_hash, dtype=np.uint64),
        has_isrc=has_isrc,
        fingerprint=fingerprint(con).digest,
        holdings=bool(holdings),
    )


def rank_order(con: duckdb.DuckDBPyConnection, popularity: np.ndarray, listens: np.ndarray,
               secondary: np.ndarray, track_id: np.ndarray, real_listens: bool = True
               ) -> np.ndarray:
    """Row indices in rank order: popularity, listens, secondary priority desc; track_id asc.

    Without real listens, the estimate is a non-decreasing function of the secondary priority
    within a popularity, so (popularity, secondary) is the whole order. The same order as the
    planner's scratch table (scratch_sql).
    """
    n = len(track_id)
    cols = {"i": pa.array(np.arange(n, dtype=np.int32)),
            "p": pa.array(np.asarray(popularity, dtype=np.int16)),
            "l": pa.array(np.asarray(listens, dtype=np.float64)),
            "s": pa.array(np.asarray(secondary, dtype=np.float64)),
            "t": pa.array(track_id)}
    order_by = "p DESC, l DESC, s DESC, t" if real_listens else "p DESC, s DESC, t"
    # Several batches so DuckDB scans (and sorts) on every thread.
    table = pa.table(cols)
    keys = pa.Table.from_batches(table.to_batches(max_chunksize=_CHUNK), schema=table.schema)
    cur = con.cursor()
    try:
        cur.register("_plan_keys", keys)
        out = cur.sql(f"SELECT i FROM _plan_keys ORDER BY {order_by}").to_arrow_table()
        cur.unregister("_plan_keys")
    finally:
        cur.close()
    return np.asarray(out.column(0).to_numpy(), dtype=np.int64)


def estimate_sql(ps: PlanSettings, pop: str, secondary: str) -> str:
    """The listen estimate as SQL, for ordering only.

    Popularity 1-100 looks up the same table as listens.estimate_listens (exact); popularity
    0 uses SQL's pow, which can differ from numpy's in the last bit. The planner stores and
    values listens computed by numpy; SQL's estimate only orders it against real listens.
    """
    table = listens_at(np.maximum(np.arange(101), 1), ps.listens)
    values = ", ".join(repr(float(x)) for x in table)
    smax = max(ps.secondary.maximum, 1e-12)
    zd = float(ps.listens.zero_decades)
    p = f"least(greatest({pop}, 0), 100)"
    return (f"(CASE WHEN {p} = 0 THEN {float(table[1])!r} * pow(10.0, {zd!r} * "
            f"(least(greatest({secondary} / {smax!r}, 0.0), 1.0) - 1.0)) "
            f"ELSE list_extract([{values}]::DOUBLE[], {p} + 1) END)")


def scratch_sql(ps: PlanSettings, table: str, real_listens: bool,
                derived_columns: bool = False) -> str:
    """Create `table`: every track's inputs, stored in rank order (rank = rowid + 1).

    DuckDB sorts (out of core under its memory limit) and, preserving insertion order,
    stores the rows in that order; the planner reads them back in rank-ordered chunks.
    """
    if real_listens:
        est = estimate_sql(ps, "popularity", "secondary")
        order = f"popularity DESC, coalesce(listens, {est}) DESC, secondary DESC, track_id"
    else:
        order = "popularity DESC, secondary DESC, track_id"
    return (f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"SELECT * FROM ({_query(ps, True, derived_columns)}) q ORDER BY {order}")


def representatives(con: duckdb.DuckDBPyConnection, dupkey: np.ndarray,
                    has_dupkey: np.ndarray, usable: np.ndarray, rank: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Rows sharing an ISRC, and for each the row that keeps its audio (first usable in rank
    order; itself for that row)."""
    rows = np.flatnonzero(has_dupkey)
    if rows.size == 0:
        return rows, rows
    n = len(rank)
    keys = pa.table({
        "i": pa.array(rows.astype(np.int32)),
        "k": pa.array(dupkey[rows]),
        # Usable rows first, then rank.
        "o": pa.array(np.where(usable[rows], rank[rows], rank[rows] + n)),
    })
    keys = pa.Table.from_batches(keys.to_batches(max_chunksize=_CHUNK), schema=keys.schema)
    cur = con.cursor()
    try:
        cur.register("_plan_isrc", keys)
        out = cur.sql("SELECT i, arg_min(i, o) OVER (PARTITION BY k) AS r "
                      "FROM _plan_isrc").to_arrow_table()
        cur.unregister("_plan_isrc")
    finally:
        cur.close()
    return (np.asarray(out.column("i").to_numpy(), dtype=np.int64),
            np.asarray(out.column("r").to_numpy(), dtype=np.int64))
