"""Priority and planning inputs: one DuckDB query gives every track in rank order.

Rank: popularity first, then real listens, then the secondary priority of the reference
design (artist popularity, release popularity, log of artist followers), then track_id.
One copy per ISRC: within an ISRC, the first usable row in rank order is the representative;
later rows are its duplicates (the plan decides which of them are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from soundkeep.plan.config import PlanSettings


@dataclass
class Inputs:
    """Planning inputs as numpy arrays, one entry per track, index = rank - 1."""

    track_id: np.ndarray      # int64
    popularity: np.ndarray    # int64 (NULL -> 0)
    listens: np.ndarray       # float64 real listens (NaN when absent)
    has_listens: np.ndarray   # bool
    secondary: np.ndarray     # float64 secondary priority
    duration_ms: np.ndarray   # int64 (0 when unknown); the held file's when one is held
    held_bytes: np.ndarray    # int64 (0 when no file is held)
    sha256: pa.Array          # the held file's sha256 (null when none)
    distributable: np.ndarray  # bool
    rep_rank: np.ndarray      # int64 rank of the ISRC representative (own rank when none)
    has_isrc: np.ndarray      # bool
    fingerprint: str          # hash of everything above
    holdings: bool            # whether the archive holds any audio at all

    def __len__(self) -> int:
        return len(self.track_id)


def secondary_sql(ps: PlanSettings, art_pop: str, rel_pop: str, followers: str) -> str:
    """The secondary priority formula as a SQL expression over three columns."""
    s = ps.secondary
    return (f"({s.artist_popularity!r} * coalesce({art_pop}, 0)"
            f" + {s.release_popularity!r} * coalesce({rel_pop}, 0)"
            f" + {s.followers_per_decade!r} * log10(least({s.followers_cap!r},"
            f" greatest(coalesce({followers}, 0), 0) + 1)))")


def _query(ps: PlanSettings) -> str:
    sec = secondary_sql(ps, "ta.art_pop", "r.popularity", "ta.art_fol")
    return f"""
WITH ta AS (
    SELECT x.track_id, max(a.popularity) AS art_pop, max(a.followers) AS art_fol
    FROM track_artists x JOIN artists a ON a.artist_id = x.artist_id
    GROUP BY x.track_id
),
held AS (
    SELECT track_id, sha256, size, duration_ms FROM (
        SELECT l.track_id, f.sha256, f.size, f.duration_ms,
               row_number() OVER (PARTITION BY l.track_id
                                  ORDER BY f.bitrate DESC NULLS LAST, f.size DESC, f.sha256)
                 AS pick
        FROM audio_links l JOIN audio_files f ON f.sha256 = l.sha256
        WHERE l.track_id IS NOT NULL AND f.size > 0
    ) WHERE pick = 1
),
base AS (
    SELECT t.track_id,
           coalesce(t.popularity, 0)::BIGINT AS popularity,
           t.listens::DOUBLE AS listens,
           t.isrc,
           t.distributable,
           coalesce(h.duration_ms, t.duration_ms, 0)::BIGINT AS duration_ms,
           coalesce(h.size, 0)::BIGINT AS held_bytes,
           h.sha256,
           {sec} AS secondary
    FROM tracks t
    LEFT JOIN ta ON ta.track_id = t.track_id
    LEFT JOIN releases r ON r.release_id = t.release_id
    LEFT JOIN held h ON h.track_id = t.track_id
),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY popularity DESC, listens DESC NULLS LAST,
                                          secondary DESC, track_id) AS rank
    FROM base
)
SELECT track_id, popularity, listens, secondary, duration_ms, held_bytes, sha256,
       distributable, rank, isrc IS NOT NULL AS has_isrc,
       CASE WHEN isrc IS NULL THEN rank
            ELSE first_value(rank) OVER (PARTITION BY isrc
                 ORDER BY (duration_ms > 0 OR held_bytes > 0) DESC, rank) END AS rep_rank,
       hash(track_id, popularity, listens, isrc, distributable, duration_ms, held_bytes,
            sha256, secondary) AS h
FROM ranked
"""


def _np(table: pa.Table, name: str, dtype: type, fill: object = 0) -> np.ndarray:
    col = table.column(name)
    if col.null_count:
        col = col.fill_null(fill)
    return np.asarray(col.to_numpy(), dtype=dtype)


def read_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run a query into an Arrow table on a cursor (a result left open on con is no matter)."""
    cur = con.cursor()
    try:
        return cur.sql(sql).to_arrow_table()
    finally:
        cur.close()


def load_inputs(con: duckdb.DuckDBPyConnection, ps: PlanSettings) -> Inputs:
    """Run the input query and return every track's inputs, ordered by rank."""
    table = read_arrow(con, _query(ps))
    n = table.num_rows
    order = np.empty(n, dtype=np.int64)
    order[_np(table, "rank", np.int64) - 1] = np.arange(n)
    table = table.take(pa.array(order))
    listens_col = table.column("listens")
    has_listens = np.asarray(listens_col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    hashes = _np(table, "h", np.uint64)
    holdings = con.execute("SELECT count(*) > 0 FROM audio_files").fetchall()[0]
    return Inputs(
        track_id=_np(table, "track_id", np.int64),
        popularity=_np(table, "popularity", np.int64),
        listens=_np(table, "listens", np.float64, float("nan")),
        has_listens=has_listens,
        secondary=_np(table, "secondary", np.float64),
        duration_ms=np.maximum(_np(table, "duration_ms", np.int64), 0),
        held_bytes=_np(table, "held_bytes", np.int64),
        sha256=table.column("sha256").combine_chunks(),
        distributable=_np(table, "distributable", np.bool_, False),
        rep_rank=_np(table, "rep_rank", np.int64),
        has_isrc=_np(table, "has_isrc", np.bool_, False),
        # Order-independent sum of row hashes (wrapping), plus the row count.
        fingerprint=f"{n}:{int(hashes.sum(dtype=np.uint64)):016x}",
        holdings=bool(holdings and holdings[0]),
    )
