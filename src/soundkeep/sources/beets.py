"""A beets library (`library.db`): the operator's own collection, with the paths of its files.

beets keeps one row per file in the SQLite table `items` (title, artist, album, track, disc,
length in seconds, mb_trackid = the MusicBrainz recording id, path as bytes, and more). Each
item becomes a catalog track; its path goes to `known_paths`, so `soundkeep scan` links the
file at once. A track tagged with a MusicBrainz recording id uses it as its source key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from soundkeep.archive import Archive
from soundkeep.catalog.ingest import IngestResult, Progress, expand, ingest_file
from soundkeep.catalog.mapping import Mapping
from soundkeep.errors import InputError

SOURCE = "beets"


def _mapping(path: Path) -> Mapping:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        cols = {r[1] for r in con.execute("PRAGMA table_info(items)")}
        con.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a beets library ({exc})", file=str(path)) from None
    if not {"title", "path"} <= cols:
        raise InputError("not a beets library: no items table with title and path",
                         file=str(path), expected="a beets library.db")
    fields = {"id": "sk_key", "title": "title", "artists": "artist", "album": "album",
              "track_number": "track", "disc_number": "disc", "duration_ms": "duration_ms"}
    isrc = ", isrc" if "isrc" in cols else ""
    if isrc:
        fields["isrc"] = "isrc"
    mbid = "mb_trackid" if "mb_trackid" in cols else "NULL"
    # Items tagged with a MusicBrainz recording id keep it as their key; others the beets id.
    query = f"""SELECT rowid AS _row, title, artist, album, track, disc{isrc},
                       CAST(round(length * 1000) AS INTEGER) AS duration_ms,
                       CASE WHEN {mbid} IS NOT NULL AND {mbid} <> '' THEN {mbid}
                            ELSE 'beets-item-' || id END AS sk_key,
                       CAST(path AS TEXT) AS path
                FROM items"""
    return Mapping(entity="tracks", source=SOURCE, query=query, fields=fields)


def _paths(con: duckdb.DuckDBPyConnection, batch: object, source_id: int) -> None:
    """Record each accepted item's file path for the audio scan."""
    if not isinstance(batch, pa.RecordBatch):
        return
    con.register("beets_raw", batch.select(["_row", "path"]))
    con.execute(f"""INSERT INTO known_paths
        SELECT r.path, v.eid, {source_id} FROM beets_raw r JOIN v USING (_row)
        WHERE r.path IS NOT NULL""")
    con.unregister("beets_raw")


def ingest_beets(arch: Archive, paths: Iterable[Path],
                 on_progress: Progress | None = None) -> list[IngestResult]:
    """Ingest beets libraries: items become tracks, their files become known paths."""
    results = []
    for path in expand(paths):
        try:
            results.append(ingest_file(arch, path, fmt="sqlite", mapping=_mapping(path),
                                       on_progress=on_progress, after_batch=_paths))
        except InputError as exc:
            results.append(IngestResult(file=str(path), error=exc.one_line()))
    return results
