"""Catalog statistics: counts, shared ISRCs, popularity, genres, years (one query each)."""

from __future__ import annotations

from typing import Any

import duckdb

from soundkeep.db import one


def catalog_stats(con: duckdb.DuckDBPyConnection, top: int = 20) -> dict[str, Any]:
    """The figures `soundkeep stats` prints: counts, ISRC sharing, histograms, top genres."""
    isrc = one(con, """
        WITH g AS (SELECT isrc, count(*) AS n FROM tracks WHERE isrc IS NOT NULL GROUP BY isrc)
        SELECT count(*), count(*) FILTER (WHERE n > 1), coalesce(max(n), 0),
               coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE n > 1), 0)
        FROM g""") or (0, 0, 0, 0, 0)
    counts = one(con, """
        SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM releases),
               (SELECT count(*) FROM artists), (SELECT count(*) FROM quarantine),
               (SELECT count(*) FROM tracks WHERE distributable),
               (SELECT count(*) FROM tracks WHERE explicit),
               (SELECT count(*) FROM track_artists), (SELECT count(*) FROM release_artists),
               (SELECT count(DISTINCT genre) FROM artist_genres),
               (SELECT count(*) FROM sources)""") or (0,) * 10
    pop = con.execute("""
        SELECT CASE WHEN popularity IS NULL THEN -1 ELSE popularity // 10 * 10 END AS bucket,
               count(*) FROM tracks GROUP BY 1 ORDER BY 1""").fetchall()
    genres = con.execute(f"""
        SELECT genre, count(*) AS artists FROM artist_genres GROUP BY 1
        ORDER BY 2 DESC, 1 LIMIT {int(top)}""").fetchall()
    years = con.execute("""
        SELECT year(r.release_date) AS y, count(*) FROM tracks t
        JOIN releases r USING (release_id) WHERE r.release_date IS NOT NULL
        GROUP BY 1 ORDER BY 1""").fetchall()
    rights = con.execute("""
        SELECT rights_status, count(*) FROM tracks GROUP BY 1 ORDER BY 2 DESC""").fetchall()
    release_types = con.execute("""
        SELECT coalesce(release_type, 'unknown'), count(*) FROM releases GROUP BY 1
        ORDER BY 2 DESC""").fetchall()
    quarantine = con.execute("""
        SELECT stage, count(*) FROM quarantine GROUP BY 1 ORDER BY 1""").fetchall()
    tracks = int(counts[0])
    return {
        "tracks": tracks,
        "releases": int(counts[1]),
        "artists": int(counts[2]),
        "quarantined": int(counts[3]),
        "distributable": int(counts[4]),
        "explicit": int(counts[5]),
        "track_artists": int(counts[6]),
        "release_artists": int(counts[7]),
        "genres": int(counts[8]),
        "sources": int(counts[9]),
        "isrcs_unique": int(isrc[0]),
        "isrcs_shared": int(isrc[1]),
        "isrc_max_rows": int(isrc[2]),
        "tracks_with_isrc": int(isrc[3]),
        "tracks_sharing_isrc": int(isrc[4]),
        "popularity_histogram": {("unknown" if b == -1 else f"{b}-{min(b + 9, 100)}"): int(n)
                                 for b, n in pop},
        "top_genres": [{"genre": g, "artists": int(n)} for g, n in genres],
        "tracks_per_year": {str(y): int(n) for y, n in years},
        "rights": {r: int(n) for r, n in rights},
        "release_types": {r: int(n) for r, n in release_types},
        "quarantined_by_stage": {s: int(n) for s, n in quarantine},
    }
