"""Columns of `tracks` derived from other rows: what the plan needs of each track's relations.

* `artist_popularity`, `artist_followers`: the highest popularity and the most followers
  among the track's credited artists (NULL when no credited artist has one);
* `release_popularity`: its release's popularity.

The plan reads them for every track: kept in `tracks`, they spare it a group-by of every
credit and joins of catalog-sized tables on each plan.

Whatever writes tracks, credits, artists or releases keeps them: ingest sets them when it
inserts tracks and refreshes the tracks of the artists and releases it loads; the migration
that added them filled them in. Whoever edits those tables by hand runs `refresh` after.
"""

from __future__ import annotations

import duckdb

from soundkeep import db

# The maxima of every track with a credit (x: track_artists), or of those matching a filter.
_MAXIMA = """
    SELECT x.track_id, max(a.popularity) AS pop, max(a.followers) AS fol
    FROM track_artists x JOIN artists a ON a.artist_id = x.artist_id
    {where}
    GROUP BY x.track_id"""


def maxima_sql(track_ids: str | None = None) -> str:
    """SELECT (track_id, pop, fol): the artist maxima of every track with a credited artist,
    or of the tracks in `track_ids` (a subquery of track ids)."""
    return _MAXIMA.format(where=f"WHERE x.track_id IN ({track_ids})" if track_ids else "")


# The derived columns and how each is made from m (maxima) and r (releases).
COLUMNS = {
    "artist_popularity": "m.pop",
    "artist_followers": "m.fol",
    "release_popularity": "r.popularity",
}

# Above this many changed tracks, refresh writes the table anew instead of updating rows in
# place: DuckDB keeps an updated row's old values in memory until the commit (a catalog-wide
# update runs out of memory at 100 M tracks), rows written to a new table go to disk.
UPDATE_MAX = 1 << 21
_CHANGES = "_derived_changes"


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute every track's derived columns (after edits by hand), in a transaction of
    its own; only rows whose values change are written. Returns how many did."""
    with db.transaction(con):
        return _refresh(con, None)


def refresh_credited(con: duckdb.DuckDBPyConnection, artist_ids: str) -> int:
    """Recompute the tracks crediting `artist_ids` (a subquery), inside the caller's
    transaction (ingest's). Returns how many tracks changed."""
    return _refresh(con, f"SELECT track_id FROM track_artists WHERE artist_id IN ({artist_ids})")


def refresh_released(con: duckdb.DuckDBPyConnection, release_ids: str) -> int:
    """Recompute the tracks of `release_ids` (a subquery), inside the caller's transaction
    (ingest's). Returns how many tracks changed."""
    return _refresh(con, f"SELECT track_id FROM tracks WHERE release_id IN ({release_ids})")


def _refresh(con: duckdb.DuckDBPyConnection, track_ids: str | None) -> int:
    scope = f"WHERE t.track_id IN ({track_ids})" if track_ids else ""
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM {e}" for c, e in COLUMNS.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_CHANGES} AS
        SELECT t.track_id, {", ".join(f"{e} AS {c}" for c, e in COLUMNS.items())}
        FROM tracks t
        LEFT JOIN ({maxima_sql(track_ids)}) m ON m.track_id = t.track_id
        LEFT JOIN releases r ON r.release_id = t.release_id
        {scope} {"AND" if scope else "WHERE"} ({differs})""")
    try:
        n = int(con.execute(f"SELECT count(*) FROM {_CHANGES}").fetchall()[0][0])
        if 0 < n <= UPDATE_MAX:
            sets = ", ".join(f"{c} = c.{c}" for c in COLUMNS)
            con.execute(f"UPDATE tracks SET {sets} FROM {_CHANGES} c "
                        f"WHERE tracks.track_id = c.track_id")
        elif n:
            _rewrite(con)
        return n
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_CHANGES}")


def _rewrite(con: duckdb.DuckDBPyConnection) -> None:
    """tracks written anew with the changed values, rows in their order, same definition."""
    ddl = str(con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'tracks' "
                          "AND schema_name = 'main' AND NOT temporary").fetchall()[0][0])
    con.execute(ddl.replace("CREATE TABLE tracks(", "CREATE TABLE _tracks_new(", 1))
    kept = ", ".join(f"CASE WHEN c.track_id IS NULL THEN t.{col} ELSE c.{col} END AS {col}"
                     for col in COLUMNS)
    con.execute(f"""INSERT INTO _tracks_new
        SELECT t.* REPLACE ({kept})
        FROM tracks t LEFT JOIN {_CHANGES} c ON c.track_id = t.track_id
        ORDER BY t.rowid""")
    con.execute("DROP TABLE tracks")
    con.execute("ALTER TABLE _tracks_new RENAME TO tracks")
