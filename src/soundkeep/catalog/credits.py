"""Per-track artist maxima: what a track's credited artists bring to its priority.

`tracks.artist_popularity` is the highest popularity among a track's credited artists and
`tracks.artist_followers` the largest follower count (NULL when no credited artist has one).
The plan's secondary priority needs both for every track; reading them from `tracks` spares
it a group-by of every credit and a join of two catalog-sized tables on each plan.

They are kept by whatever writes credits or artists: ingest sets them when it inserts tracks
and refreshes the tracks crediting the artists it loads; the migration that added them fills
them in. Whoever edits `tracks`, `track_artists` or `artists` by hand runs `refresh` after.
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


# Above this many changed tracks, refresh writes the table anew instead of updating rows in
# place: DuckDB keeps an updated row's old values in memory until the commit (a catalog-wide
# update runs out of memory at 100 M tracks), rows written to a new table go to disk.
UPDATE_MAX = 1 << 21
_CHANGES = "_credit_changes"


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute every track's maxima (after edits by hand), in a transaction of its own;
    only rows whose values change are written. Returns how many did."""
    with db.transaction(con):
        return _refresh(con, None)


def refresh_credited(con: duckdb.DuckDBPyConnection, artist_ids: str) -> int:
    """Recompute the maxima of the tracks crediting `artist_ids` (a subquery), inside the
    caller's transaction (ingest's). Returns how many tracks changed."""
    return _refresh(con, f"SELECT track_id FROM track_artists WHERE artist_id IN ({artist_ids})")


def _refresh(con: duckdb.DuckDBPyConnection, track_ids: str | None) -> int:
    scope = f"WHERE t.track_id IN ({track_ids})" if track_ids else ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_CHANGES} AS
        SELECT t.track_id, m.pop, m.fol
        FROM tracks t LEFT JOIN ({maxima_sql(track_ids)}) m ON m.track_id = t.track_id
        {scope} {"AND" if scope else "WHERE"}
              (t.artist_popularity IS DISTINCT FROM m.pop
               OR t.artist_followers IS DISTINCT FROM m.fol)""")
    try:
        n = int(con.execute(f"SELECT count(*) FROM {_CHANGES}").fetchall()[0][0])
        if 0 < n <= UPDATE_MAX:
            con.execute(f"""UPDATE tracks SET artist_popularity = c.pop, artist_followers = c.fol
                            FROM {_CHANGES} c WHERE tracks.track_id = c.track_id""")
        elif n:
            _rewrite(con)
        return n
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_CHANGES}")


def _rewrite(con: duckdb.DuckDBPyConnection) -> None:
    """tracks written anew with the changed maxima, rows in their order, same definition."""
    ddl = str(con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'tracks' "
                          "AND schema_name = 'main' AND NOT temporary").fetchall()[0][0])
    con.execute(ddl.replace("CREATE TABLE tracks(", "CREATE TABLE _tracks_new(", 1))
    con.execute(f"""INSERT INTO _tracks_new
        SELECT t.* REPLACE (
                   CASE WHEN c.track_id IS NULL THEN t.artist_popularity ELSE c.pop END
                       AS artist_popularity,
                   CASE WHEN c.track_id IS NULL THEN t.artist_followers ELSE c.fol END
                       AS artist_followers)
        FROM tracks t LEFT JOIN {_CHANGES} c ON c.track_id = t.track_id
        ORDER BY t.rowid""")
    con.execute("DROP TABLE tracks")
    con.execute("ALTER TABLE _tracks_new RENAME TO tracks")
