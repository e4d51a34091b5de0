"""Chromaprint fingerprints (the AcoustID standard) and matching them as set operations.

Fingerprints come from pyacoustid with the system libchromaprint, fed PCM that PyAV decoded,
so no fpcalc binary is needed. Matching follows AcoustID's idea: the raw fingerprint is a
list of 32-bit sub-fingerprints (about 8 per second); two files share exact sub-fingerprint
values at a constant offset when they hold the same recording, so candidates come from a
join on those values and are confirmed by the bit error rate over the aligned overlap.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

MAX_SECONDS = 120
MISSING_WARNING = ("libchromaprint was not found: fingerprints are skipped "
                   "(install the libchromaprint1 package to compute them)")
# A file with fewer distinct sub-fingerprints (silence, a steady tone) matches everything
# alike; it is not indexed.
MIN_DISTINCT_TERMS = 10
# A value shared by more files than this says nothing (and would blow up the join).
MAX_TERM_FILES = 500
# Candidate pairs need this many equal values at one offset before they are compared.
MIN_HITS = 2
# Compared items must overlap this much (about 4 seconds).
MIN_OVERLAP = 30


@functools.cache
def available() -> bool:
    """True when pyacoustid found the system libchromaprint."""
    try:
        import acoustid
    except Exception:  # a broken optional library must not stop a scan
        return False
    return bool(getattr(acoustid, "have_chromaprint", False))


def fingerprint_pcm(sample_rate: int, channels: int, blocks: Iterator[bytes]
                    ) -> tuple[str, list[int]]:
    """Fingerprint interleaved signed 16-bit PCM; returns (AcoustID string, raw values)."""
    import acoustid
    import chromaprint

    fp = acoustid.fingerprint(sample_rate, channels, blocks, maxlength=MAX_SECONDS)
    raw, _algorithm = chromaprint.decode_fingerprint(fp)
    return fp.decode("ascii"), [int(v) & 0xFFFFFFFF for v in raw]


def similarity_sql(a: str, b: str, off: str) -> tuple[str, str]:
    """SQL for (1 - 2 * bit error rate, overlap) of raw lists a, b, a[i] aligned to b[i - off]."""
    n = (f"least(len({a}) - greatest({off}, 0), len({b}) - greatest(-({off}), 0))")
    errs = (f"list_sum(list_transform(range({n}), lambda i: bit_count(xor("
            f"{a}[i + 1 + greatest({off}, 0)], {b}[i + 1 + greatest(-({off}), 0)]))))")
    return f"greatest(0.0, 1.0 - 2.0 * {errs} / (32.0 * {n}))", n


def match_new(con: duckdb.DuckDBPyConnection, min_similarity: float) -> int:
    """Compare files not yet matched with every fingerprinted file; record matching pairs.

    Runs inside the caller's transaction; returns how many new pairs of files were found.
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE fp_new AS
        SELECT sha256 FROM audio_files
        WHERE fp_matched_at IS NULL AND fingerprint_raw IS NOT NULL""")
    if con.execute("SELECT count(*) FROM fp_new").fetchall()[0][0] == 0:
        con.execute("DROP TABLE fp_new")
        return 0
    sim, overlap = similarity_sql("q.fingerprint_raw", "o.fingerprint_raw", "p.off")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fp_pairs AS
        WITH q AS (
            SELECT t.sha256, t.term, t.pos FROM audio_fp_terms t SEMI JOIN fp_new USING (sha256)
        ), common AS (
            SELECT term FROM audio_fp_terms WHERE term IN (SELECT term FROM q)
            GROUP BY term HAVING count(*) <= {MAX_TERM_FILES}
        ), hits AS (
            SELECT q.sha256, o.sha256 AS other_sha256, q.pos - o.pos AS off, count(*) AS n
            FROM q JOIN audio_fp_terms o ON o.term = q.term AND o.sha256 <> q.sha256
            WHERE q.term IN (SELECT term FROM common)
            GROUP BY ALL HAVING count(*) >= {MIN_HITS}
        ), best AS (
            SELECT * FROM hits QUALIFY row_number() OVER (
                PARTITION BY sha256, other_sha256 ORDER BY n DESC, abs(off), off) = 1
        )
        SELECT p.sha256, p.other_sha256, p.off AS item_offset, {sim} AS similarity
        FROM best p
        JOIN audio_files q ON q.sha256 = p.sha256
        JOIN audio_files o ON o.sha256 = p.other_sha256
        WHERE {overlap} >= {MIN_OVERLAP}
    """)
    before = con.execute("SELECT count(*) FROM audio_fp_matches").fetchall()[0][0]
    con.execute("""
        INSERT INTO audio_fp_matches
        SELECT DISTINCT sha256, other_sha256, item_offset, similarity FROM (
            SELECT sha256, other_sha256, item_offset, similarity FROM fp_pairs
            UNION ALL
            SELECT other_sha256, sha256, -item_offset, similarity FROM fp_pairs
        ) n
        WHERE similarity >= ?
          AND NOT EXISTS (SELECT 1 FROM audio_fp_matches m
                          WHERE m.sha256 = n.sha256 AND m.other_sha256 = n.other_sha256)
    """, [min_similarity])
    after = con.execute("SELECT count(*) FROM audio_fp_matches").fetchall()[0][0]
    con.execute("""
        UPDATE audio_files SET fp_matched_at = now()
        WHERE sha256 IN (SELECT sha256 FROM fp_new)""")
    con.execute("DROP TABLE fp_new")
    con.execute("DROP TABLE fp_pairs")
    return (int(after) - int(before)) // 2
