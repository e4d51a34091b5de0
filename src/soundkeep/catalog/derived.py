"""Columns of `tracks` derived from other rows: what the plan needs of each track's relations.

* `artist_popularity`, `artist_followers`: the highest popularity and the most followers
  among the track's credited artists (NULL when no credited artist has one);
* `release_popularity`: its release's popularity;
* `isrc_shared`: whether another track has the same ISRC (by its 64-bit hash, as the plan
  tells ISRCs apart), so that the plan groups those few tracks instead of every ISRC.

They are an acceleration, made by `soundkeep refresh` (`refresh`), not by ingest: kept up to
date on every write they cost ingest a quarter of its time. `refresh` records a digest of
what they derive from (`SOURCES`); while the tables still match it, the plan reads the
columns instead of grouping every credit and joining catalog-sized tables (about a third
of its time at 10 M tracks, more beyond); once anything changed, the plan computes the
values itself (correct, slower) until the next refresh.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from soundkeep import db

# The derived columns, and how each is made from m (maxima), r (releases) and s (ISRCs on
# more than one track).
COLUMNS = {
    "artist_popularity": "m.pop",
    "artist_followers": "m.fol",
    "release_popularity": "r.popularity",
    "isrc_shared": "s.k IS NOT NULL",
}
COLUMNS_SQL = ", ".join(COLUMNS)
# What they derive from, digested (db.digests): per table, the columns read.
SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tracks", (f"track_id, release_id, isrc, {COLUMNS_SQL}",)),
    ("track_artists", ("track_id, artist_id",)),
    ("artists", ("artist_id, popularity, followers",)),
    ("releases", ("release_id, popularity",)),
)
# The digest of SOURCES when the columns were last made (meta).
META_KEY = "catalog.derived_digest"


def digest(digests: Mapping[tuple[str, str], str]) -> str:
    """The digest of SOURCES, picked from table digests (db.digests) that include them."""
    return ":".join(digests[(table, cols)] for table, colsets in SOURCES for cols in colsets)


def is_fresh(con: duckdb.DuckDBPyConnection, digests: Mapping[tuple[str, str], str]) -> bool:
    """Whether the derived columns were made from tables with these digests (db.digests,
    SOURCES among them)."""
    return db.get_meta(con, META_KEY) == digest(digests)


# The maxima of every track with a credited artist (x: track_artists).
MAXIMA_SQL = """
    SELECT x.track_id, max(a.popularity) AS pop, max(a.followers) AS fol
    FROM track_artists x JOIN artists a ON a.artist_id = x.artist_id
    GROUP BY x.track_id"""


# Above this many changed tracks, refresh writes the table anew instead of updating rows in
# place: DuckDB keeps an updated row's old values in memory until the commit (a catalog-wide
# update runs out of memory at 100 M tracks), rows written to a new table go to disk.
UPDATE_MAX = 1 << 21
_CHANGES = "_derived_changes"


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Make every track's derived columns (after ingest, or edits by hand), in a transaction
    of its own, and record what they were made from. Rows whose values change are updated
    (past UPDATE_MAX, the table is written anew). Returns how many changed."""
    with db.transaction(con):
        n = _refresh(con)
        db.set_meta(con, META_KEY, digest(db.digests(con, SOURCES)))
    return n


# The ISRC hashes found on more than one track (few: the join's table stays small).
SHARED_ISRC_SQL = """
    SELECT hash(isrc) AS k FROM tracks WHERE isrc IS NOT NULL
    GROUP BY k HAVING count(*) > 1"""

_SOURCES_SQL = f"""
        FROM tracks t
        LEFT JOIN ({MAXIMA_SQL}) m ON m.track_id = t.track_id
        LEFT JOIN releases r ON r.release_id = t.release_id
        LEFT JOIN ({SHARED_ISRC_SQL}) s ON t.isrc IS NOT NULL AND s.k = hash(t.isrc)"""


def _refresh(con: duckdb.DuckDBPyConnection) -> int:
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM ({e})" for c, e in COLUMNS.items())
    # Counted first, to choose the way: twice the maxima's work, but either way bounded in
    # memory (a LIMITed first pass would cost a third pass when the table is written anew,
    # refresh's usual case after an ingest).
    n = int(con.execute(f"SELECT count(*) {_SOURCES_SQL} WHERE {differs}").fetchall()[0][0])
    if n > UPDATE_MAX:
        _rewrite(con)
    elif n:
        # A temporary table inside a transaction stays in memory: only for a few rows.
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {_CHANGES} AS
            SELECT t.track_id, {", ".join(f"{e} AS {c}" for c, e in COLUMNS.items())}
            {_SOURCES_SQL} WHERE {differs}""")
        try:
            sets = ", ".join(f"{c} = c.{c}" for c in COLUMNS)
            con.execute(f"UPDATE tracks SET {sets} FROM {_CHANGES} c "
                        f"WHERE tracks.track_id = c.track_id")
        finally:
            con.execute(f"DROP TABLE IF EXISTS {_CHANGES}")
    return n


def _rewrite(con: duckdb.DuckDBPyConnection) -> None:
    """tracks written anew with every derived value, rows in their order, same definition."""
    ddl = str(con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'tracks' "
                          "AND schema_name = 'main' AND NOT temporary").fetchall()[0][0])
    con.execute(ddl.replace("CREATE TABLE tracks(", "CREATE TABLE _tracks_new(", 1))
    made = ", ".join(f"{e} AS {c}" for c, e in COLUMNS.items())
    con.execute(f"INSERT INTO _tracks_new SELECT t.* REPLACE ({made}) {_SOURCES_SQL} "
                f"ORDER BY t.rowid")
    con.execute("DROP TABLE tracks")
    con.execute("ALTER TABLE _tracks_new RENAME TO tracks")
