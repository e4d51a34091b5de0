"""ListenBrainz-style listen counts: a recording MBID or an ISRC, and how often it was heard.

Accepted shapes (any reader format: JSON Lines, CSV/TSV, Parquet): a key column
`recording_mbid` (or `mbid`) and/or `isrc`, and a count column `listen_count` (or `count`,
`listens`). Counts for the same recording within a file add up; the file's total then sets
`listens` on every catalog track with that recording MBID (as its source key) or ISRC. A line
that matches no track, or has no usable key or count, goes to quarantine with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from soundkeep import db
from soundkeep.archive import Archive
from soundkeep.catalog import identifiers as ids
from soundkeep.catalog.ingest import (
    IngestResult,
    Progress,
    already_ingested,
    expand,
    next_source_id,
    record_source,
    sha256_file,
)
from soundkeep.catalog.readers import ParquetRange, open_source
from soundkeep.db import now, one
from soundkeep.errors import InputError

_KEYS = {"mbid": ("recording_mbid", "mbid", "recording_id"), "isrc": ("isrc",),
         "count": ("listen_count", "count", "listens", "playcount")}


def _column(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[w] for w in wanted if w in lower), None)


def _expr(batch: pa.RecordBatch | ParquetRange, key: str) -> str:
    names = batch.schema.names
    if "_line" in names:
        alts = ", ".join(f"json_extract_string(_line, '$.{w}')" for w in _KEYS[key])
        return f"coalesce({alts})"
    col = _column(names, _KEYS[key])
    return "NULL" if col is None else f'CAST("{col}" AS VARCHAR)'


def ingest_listens(arch: Archive, paths: Iterable[Path],
                   on_progress: Progress | None = None) -> list[IngestResult]:
    """Set tracks.listens from listen-count files; unmatched lines are quarantined."""
    results = []
    for path in expand(paths):
        try:
            results.append(_ingest_one(arch, path, on_progress))
        except InputError as exc:
            results.append(IngestResult(file=str(path), error=exc.one_line()))
    return results


def _ingest_one(arch: Archive, path: Path, on_progress: Progress | None) -> IngestResult:
    t0 = time.perf_counter()
    con = arch.con
    opened = open_source(path, None, batch_rows=arch.settings.typed("ingest.batch_rows", int, 1))
    digest = sha256_file(path)
    res = IngestResult(file=str(path.resolve()), format=opened.fmt, entity="listens",
                       source="listenbrainz")
    if already_ingested(con, res, digest):
        return res
    file_lit = db.literal(res.file)
    started = now()
    source_id = next_source_id(con)
    try:
        with db.transaction(con):
            con.execute("CREATE OR REPLACE TEMP TABLE lb (mbid VARCHAR, isrc VARCHAR, n BIGINT)")
            for batch in opened.batches:
                if isinstance(batch, ParquetRange):
                    source = batch.sql()
                else:
                    con.register("raw", batch)
                    source = "raw"
                invalid = "_invalid" if "_invalid" in batch.schema.names else "NULL"
                con.execute(f"""CREATE OR REPLACE TEMP TABLE lb_batch AS
                    SELECT _row, {invalid} AS invalid, lower(trim({_expr(batch, 'mbid')})) AS mbid,
                           nullif({ids.sql_normalize_isrc(_expr(batch, 'isrc'))}, '') AS isrc,
                           TRY_CAST({_expr(batch, 'count')} AS BIGINT) AS n,
                           {_expr(batch, 'count')} AS raw_n
                    FROM {source}""")
                if source == "raw":
                    con.unregister("raw")
                con.execute("ALTER TABLE lb_batch ADD COLUMN reason VARCHAR")
                con.execute(f"""UPDATE lb_batch SET reason = CASE
                    WHEN invalid IS NOT NULL THEN invalid
                    WHEN mbid IS NULL AND isrc IS NULL THEN 'no recording_mbid or isrc'
                    WHEN mbid IS NOT NULL AND NOT {ids.sql_is_valid_mbid('mbid')}
                         THEN 'not a valid MusicBrainz id'
                    WHEN isrc IS NOT NULL AND NOT {ids.sql_is_valid_isrc('isrc')}
                         THEN 'not a valid ISRC'
                    WHEN n IS NULL OR n < 0 THEN 'listen count is not a whole number >= 0'
                    WHEN NOT EXISTS (SELECT 1 FROM tracks t WHERE t.isrc = lb_batch.isrc)
                         AND NOT EXISTS (SELECT 1 FROM tracks t
                                         WHERE t.source_key = lb_batch.mbid)
                         THEN 'no catalog track with this recording MBID or ISRC' END""")
                con.execute(f"""INSERT INTO quarantine
                    SELECT 'listens', {file_lit}, _row,
                           CASE WHEN reason LIKE '%count%' THEN 'listen_count'
                                WHEN reason LIKE '%ISRC%' AND mbid IS NULL THEN 'isrc'
                                WHEN reason LIKE '%MusicBrainz%' THEN 'recording_mbid' END,
                           left(coalesce(mbid, isrc, raw_n), 200), reason, now()
                    FROM lb_batch WHERE reason IS NOT NULL""")
                con.execute("INSERT INTO lb SELECT mbid, isrc, n FROM lb_batch "
                            "WHERE reason IS NULL")
                row = one(con, "SELECT count(*), count(reason) FROM lb_batch") or (0, 0)
                res.rows_read += int(row[0])
                res.rows_quarantined += int(row[1])
                res.rows_accepted += int(row[0]) - int(row[1])
                if on_progress:
                    on_progress(str(path), opened.position() if opened.position else res.rows_read,
                                opened.size if opened.position else opened.total_rows)
            # A recording's listens are the file's total for it, by MBID first, then by ISRC.
            con.execute("""UPDATE tracks SET listens = c.n
                FROM (SELECT mbid, sum(n) AS n FROM lb WHERE mbid IS NOT NULL GROUP BY mbid) c
                WHERE tracks.source_key = c.mbid""")
            con.execute("""UPDATE tracks SET listens = c.n
                FROM (SELECT isrc, sum(n) AS n FROM lb WHERE mbid IS NULL GROUP BY isrc) c
                WHERE tracks.isrc = c.isrc""")
            record_source(con, source_id, res, digest, opened.size, started)
    finally:
        con.execute("DROP TABLE IF EXISTS temp.lb")
        con.execute("DROP TABLE IF EXISTS temp.lb_batch")
    res.seconds = round(time.perf_counter() - t0, 3)
    return res
