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


def refresh(con: duckdb.DuckDBPyConnection, track_ids: str | None = None) -> int:
    """Recompute the maxima of every track, or of those in `track_ids` (a subquery); only
    rows whose values change are written. Returns how many did."""
    changed = con.execute(f"""
        UPDATE tracks SET artist_popularity = m.pop, artist_followers = m.fol
        FROM ({maxima_sql(track_ids)}) m
        WHERE tracks.track_id = m.track_id
          AND (tracks.artist_popularity IS DISTINCT FROM m.pop
               OR tracks.artist_followers IS DISTINCT FROM m.fol)""").fetchall()[0][0]
    if track_ids:
        return int(changed)
    # A track no credited artist is known for has no maxima (values set by hand are undone).
    cleared = con.execute("""
        UPDATE tracks SET artist_popularity = NULL, artist_followers = NULL
        WHERE (artist_popularity IS NOT NULL OR artist_followers IS NOT NULL)
          AND track_id NOT IN (SELECT x.track_id FROM track_artists x
                               JOIN artists a ON a.artist_id = x.artist_id)""").fetchall()[0][0]
    return int(changed) + int(cleared)
