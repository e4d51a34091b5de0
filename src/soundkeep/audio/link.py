"""Link held files to catalog tracks: ISRC, MusicBrainz recording id, fingerprint, then title +
artist + duration, and last the path a catalog row was imported from. Every step is one set
operation over all files still without a link (never a query per file); each link records its
method and a confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from soundkeep import db
from soundkeep.audio.schema import file_key_sql

METHODS = ("isrc", "mbid", "fingerprint", "title_artist_duration", "path")
# Two candidates whose confidences are this close are a tie: the file is ambiguous.
AMBIGUITY_MARGIN = 0.05
# Fingerprint links propagate through files linked in the same run: at most this many hops.
FINGERPRINT_ROUNDS = 3
LINK_STATE_KEY = "audio.link_catalog_state"

# Text compared for title and artist matches: lower case, no accents, punctuation as spaces.
_NORM_MACRO = """
CREATE OR REPLACE TEMP MACRO sk_norm(x) AS
  trim(regexp_replace(lower(strip_accents(x)), '[^a-z0-9]+', ' ', 'g'))
"""


def catalog_state(con: duckdb.DuckDBPyConnection) -> str:
    """A cheap summary that changes whenever tracks or their sources change."""
    row = con.execute("""
        SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM known_paths),
               (SELECT count(*) FROM sources),
               (SELECT max(source_id) FROM sources),
               (SELECT CAST(max(finished_at) AS VARCHAR) FROM sources)
    """).fetchall()[0]
    return ":".join(str(v) for v in row)


@dataclass
class LinkSettings:
    """The knobs of linking (from the [scan] settings)."""

    max_duration_diff_ms: int = 2000
    min_fingerprint_similarity: float = 0.7
    musicbrainz_source: str = "musicbrainz"


def link_pending(con: duckdb.DuckDBPyConnection, cfg: LinkSettings) -> dict[str, int]:
    """Link every file without a definite link; runs in the caller's transaction.

    Returns how many files each method linked in this run, plus 'ambiguous' and 'unlinked'.
    """
    # Files never linked are always tried; files left unlinked or ambiguous are tried again
    # only when the catalog changed since the last run (else the answer cannot change).
    state = catalog_state(con)
    retry = db.get_meta(con, LINK_STATE_KEY) != state
    con.execute(_NORM_MACRO)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE lk_pending AS
        SELECT f.sha256, f.tag_isrc, f.tag_mb_recording_id, f.tag_title, f.tag_artists,
               f.tag_album, f.tag_track_number, f.duration_ms
        FROM audio_files f LEFT JOIN audio_links l USING (sha256)
        WHERE l.sha256 IS NULL {"OR l.track_id IS NULL" if retry else ""}""")
    db.set_meta(con, LINK_STATE_KEY, state)
    # Which methods can find anything at all: a step without candidates is not run.
    pending, isrcs, mbids, titled, fp_pairs, paths = con.execute("""
        SELECT count(*), count(tag_isrc), count(tag_mb_recording_id),
               count(*) FILTER (WHERE tag_title IS NOT NULL AND duration_ms IS NOT NULL
                                AND len(tag_artists) > 0),
               (SELECT count(*) FROM audio_fp_matches m SEMI JOIN lk_pending p USING (sha256)),
               (SELECT count(*) FROM known_paths)
        FROM lk_pending""").fetchall()[0]
    if pending == 0:
        con.execute("DROP TABLE lk_pending")
        return {}
    con.execute("""CREATE OR REPLACE TEMP TABLE lk_result
                   (sha256 VARCHAR, track_id BIGINT, method VARCHAR, confidence DOUBLE)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE lk_cand
                   (sha256 VARCHAR, track_id BIGINT, method VARCHAR, confidence DOUBLE)""")
    # Several catalog rows may carry one ISRC or MBID (the same recording on several
    # releases): prefer the one whose release and track number agree with the tags.
    prefer = """row_number() OVER (PARTITION BY p.sha256 ORDER BY
                   (sk_norm(r.title) = sk_norm(p.tag_album)) DESC NULLS LAST,
                   (t.track_number = p.tag_track_number) DESC NULLS LAST,
                   t.listens DESC NULLS LAST, t.popularity DESC NULLS LAST, t.track_id) = 1"""
    if isrcs:
        con.execute(f"""
            INSERT INTO lk_result
            SELECT p.sha256, t.track_id, 'isrc', 1.0
            FROM lk_pending p JOIN tracks t ON t.isrc = p.tag_isrc
            LEFT JOIN releases r ON r.release_id = t.release_id
            QUALIFY {prefer}""")
    if mbids:
        con.execute(f"""
            INSERT INTO lk_result
            SELECT p.sha256, t.track_id, 'mbid', 1.0
            FROM lk_pending p JOIN tracks t
              ON t.source_key = p.tag_mb_recording_id
             AND t.source_id IN (SELECT source_id FROM sources WHERE source_name = ?)
            LEFT JOIN releases r ON r.release_id = t.release_id
            WHERE p.sha256 NOT IN (SELECT sha256 FROM lk_result)
            QUALIFY {prefer}""", [cfg.musicbrainz_source])
    for _ in range(FINGERPRINT_ROUNDS if fp_pairs else 0):
        con.execute("""
            CREATE OR REPLACE TEMP TABLE lk_step AS
            WITH known AS (
                SELECT sha256, track_id, confidence FROM audio_links
                WHERE track_id IS NOT NULL
                UNION ALL
                SELECT sha256, track_id, confidence FROM lk_result
            )
            SELECT p.sha256, k.track_id, 'fingerprint' AS method,
                   max(m.similarity * coalesce(k.confidence, 1.0)) AS confidence
            FROM lk_pending p
            JOIN audio_fp_matches m ON m.sha256 = p.sha256
            JOIN known k ON k.sha256 = m.other_sha256
            WHERE p.sha256 NOT IN (SELECT sha256 FROM lk_result)
            GROUP BY ALL""")
        if _decide(con) == 0:
            break
    if titled:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE lk_step AS
            WITH q AS (
                SELECT sha256, sk_norm(tag_title) AS nt, duration_ms, sk_norm(tag_album) AS nalb,
                       ' ' || sk_norm(array_to_string(tag_artists, ' ')) || ' ' AS nart,
                       list_transform(tag_artists, lambda a: sk_norm(a)) AS arts
                FROM lk_pending
                WHERE sha256 NOT IN (SELECT sha256 FROM lk_result)
                  AND tag_title IS NOT NULL AND duration_ms IS NOT NULL AND len(tag_artists) > 0
            ), tc AS (
                SELECT q.sha256, t.track_id, t.release_id, q.nalb, q.nart, q.arts,
                       abs(t.duration_ms - q.duration_ms) AS dd
                FROM tracks t JOIN q ON sk_norm(t.title) = q.nt
                 AND t.duration_ms BETWEEN q.duration_ms - ? AND q.duration_ms + ?
            ), art AS (
                SELECT tc.sha256, tc.track_id
                FROM tc JOIN track_artists ta ON ta.track_id = tc.track_id
                JOIN artists a ON a.artist_id = ta.artist_id
                WHERE list_contains(tc.arts, sk_norm(a.name))
                   OR tc.nart LIKE '% ' || sk_norm(a.name) || ' %'
                GROUP BY ALL
            )
            SELECT tc.sha256, tc.track_id, 'title_artist_duration' AS method,
                   0.55 + 0.3 * (1.0 - tc.dd / greatest(?, 1))
                        + 0.1 * coalesce(sk_norm(r.title) = tc.nalb, false)::INTEGER AS confidence
            FROM tc SEMI JOIN art ON art.sha256 = tc.sha256 AND art.track_id = tc.track_id
            LEFT JOIN releases r ON r.release_id = tc.release_id
        """, [cfg.max_duration_diff_ms, cfg.max_duration_diff_ms, cfg.max_duration_diff_ms])
        _decide(con)
    # Last, provenance: a source says it holds this very file for a track (known_paths:
    # a beets library's item paths, the files `ingest --format tags` read).
    if paths:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE lk_step AS
            SELECT DISTINCT p.sha256, k.track_id, 'path' AS method, 1.0 AS confidence
            FROM lk_pending p JOIN scan_paths s ON s.sha256 = p.sha256
            JOIN known_paths k ON k.path = s.path
            WHERE p.sha256 NOT IN (SELECT sha256 FROM lk_result)""")
        _decide(con)
    counts = _write(con)
    for name in ("lk_pending", "lk_result", "lk_cand", "lk_step"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return counts


def _decide(con: duckdb.DuckDBPyConnection) -> int:
    """Move lk_step's candidates into results (one clear best) or candidates (a tie)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE lk_ranked AS
        WITH c AS (
            SELECT s.*, coalesce(t.isrc, CAST(s.track_id AS VARCHAR)) AS recording
            FROM lk_step s JOIN tracks t USING (track_id)
            WHERE s.sha256 NOT IN (SELECT sha256 FROM lk_result)
        ), b AS (
            SELECT sha256, max(confidence) AS best FROM c GROUP BY sha256
        )
        SELECT c.*, b.best,
               count(DISTINCT c.recording) FILTER (WHERE c.confidence >= b.best - ?)
                   OVER (PARTITION BY c.sha256) AS rivals,
               row_number() OVER (PARTITION BY c.sha256
                                  ORDER BY c.confidence DESC, c.track_id) AS rn
        FROM c JOIN b USING (sha256)""", [AMBIGUITY_MARGIN])
    row = con.execute("""
        SELECT count(*) FROM lk_ranked WHERE rn = 1 AND rivals = 1""").fetchall()[0]
    con.execute("""
        INSERT INTO lk_result
        SELECT sha256, track_id, method, confidence FROM lk_ranked WHERE rn = 1 AND rivals = 1""")
    con.execute("""
        INSERT INTO lk_cand
        SELECT sha256, track_id, method, confidence FROM lk_ranked
        WHERE rivals > 1 AND confidence >= best - ?""", [AMBIGUITY_MARGIN])
    con.execute("DROP TABLE lk_ranked")
    return int(row[0]) if row else 0


def _write(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Replace the links whose outcome changed; keep the others (and their linked_at)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE lk_final AS
        SELECT sha256, track_id, method, confidence FROM lk_result
        UNION ALL
        SELECT sha256, NULL, 'ambiguous', max(confidence) FROM lk_cand
        WHERE sha256 NOT IN (SELECT sha256 FROM lk_result) GROUP BY sha256
        UNION ALL
        SELECT sha256, NULL, 'unlinked', NULL FROM lk_pending
        WHERE sha256 NOT IN (SELECT sha256 FROM lk_result)
          AND sha256 NOT IN (SELECT sha256 FROM lk_cand)""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE lk_changed AS
        SELECT f.* FROM lk_final f LEFT JOIN audio_links l USING (sha256)
        WHERE l.sha256 IS NULL OR l.track_id IS DISTINCT FROM f.track_id
           OR l.method <> f.method OR l.confidence IS DISTINCT FROM f.confidence""")
    con.execute("DELETE FROM audio_links WHERE sha256 IN (SELECT sha256 FROM lk_changed)")
    con.execute(f"""INSERT INTO audio_links BY NAME
                    SELECT sha256, track_id, method, confidence, now() AS linked_at,
                           {file_key_sql("sha256")} AS file_key
                    FROM lk_changed""")
    con.execute("""DELETE FROM audio_link_candidates
                   WHERE sha256 IN (SELECT sha256 FROM lk_pending)""")
    con.execute("""
        INSERT INTO audio_link_candidates
        SELECT sha256, track_id, method, max(confidence) FROM lk_cand
        WHERE sha256 NOT IN (SELECT sha256 FROM lk_result) GROUP BY ALL""")
    rows = con.execute("""SELECT method, count(*) FROM lk_changed
                          GROUP BY method""").fetchall()
    con.execute("DROP TABLE lk_final")
    con.execute("DROP TABLE lk_changed")
    return {str(m): int(n) for m, n in rows}


def unlinked_files(con: duckdb.DuckDBPyConnection, limit: int = 0) -> list[dict[str, Any]]:
    """Files without a track (unmatched or ambiguous), with their tags and any candidates."""
    sql = """
        WITH u AS (
            SELECT f.sha256, l.method, l.confidence, f.store_path, f.tag_title, f.tag_artist,
                   f.tag_album, f.tag_isrc, f.duration_ms, f.codec
            FROM audio_links l JOIN audio_files f USING (sha256)
            WHERE l.track_id IS NULL
        ), p AS (
            SELECT sha256, min(path) AS path FROM scan_paths
            WHERE sha256 IN (SELECT sha256 FROM u) GROUP BY sha256
        ), c AS (
            SELECT c.sha256,
                   list({'track_id': c.track_id, 'title': t.title, 'isrc': t.isrc,
                         'duration_ms': t.duration_ms, 'method': c.method,
                         'confidence': round(c.confidence, 3)}
                        ORDER BY c.confidence DESC, c.track_id) AS candidates
            FROM audio_link_candidates c JOIN tracks t USING (track_id)
            WHERE c.sha256 IN (SELECT sha256 FROM u)
            GROUP BY c.sha256
        )
        SELECT u.sha256, coalesce(p.path, u.store_path) AS path, u.method AS status,
               u.tag_title AS title, u.tag_artist AS artist, u.tag_album AS album,
               u.tag_isrc AS isrc, u.duration_ms, u.codec,
               coalesce(c.candidates, []) AS candidates
        FROM u LEFT JOIN p USING (sha256) LEFT JOIN c USING (sha256)
        ORDER BY path"""
    if limit > 0:
        sql += f" LIMIT {int(limit)}"
    con.complete()
    tbl = con.sql(sql).to_arrow_table()
    return [] if tbl is None else list(tbl.to_pylist())
