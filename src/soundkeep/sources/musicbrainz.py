"""MusicBrainz JSON dumps: artists, releases (with their track lists) and recordings.

The published JSON dumps hold one JSON document per line, one file per entity type (`artist`,
`release`, `recording`, often compressed). Each line is the entity as the MusicBrainz web
service renders it: `id` (the MBID), `name`/`title`, `artist-credit` (ordered credits with
`joinphrase`), `isrcs`, `length` (ms), and for releases `date`, `barcode`, `label-info`,
`release-group.primary-type` and `media[].tracks[].recording`.

A recording is one catalog track (source key: the recording MBID); a release's track list is
kept in `release_tracks` and gives each recording the release, disc and position it first
appears at, whichever of the two files is ingested first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from soundkeep.archive import Archive
from soundkeep.catalog.ingest import IngestResult, Progress, expand, ingest_file
from soundkeep.catalog.mapping import Mapping
from soundkeep.catalog.readers import open_source
from soundkeep.errors import InputError

SOURCE = "musicbrainz"

MAPPINGS = {
    "artists": Mapping(entity="artists", source=SOURCE, fields={
        "id": "id", "name": "name", "genres": "genres[*].name"}),
    "releases": Mapping(entity="releases", source=SOURCE, fields={
        "id": "id", "title": "title", "release_type": "release-group.primary-type",
        "upc": "barcode", "label": "label-info[0].label.name", "release_date": "date",
        "artist_ids": "artist-credit[*].artist.id"}),
    "tracks": Mapping(entity="tracks", source=SOURCE, fields={
        "id": "id", "title": "title", "duration_ms": "length", "isrc": "isrcs[0]",
        "artist_ids": "artist-credit[*].artist.id"}),
}

_NAMES = {"artist": "artists", "release": "releases", "recording": "tracks"}


def entity_of(path: Path) -> str:
    """artist / release / recording, from the dump's file name or else its first line."""
    stem = path.name.split(".")[0].lower()
    for prefix, entity in _NAMES.items():
        if stem.startswith(prefix):
            return entity
    opened = open_source(path, "jsonl", batch_rows=1)
    first = next(iter(opened.batches), None)
    try:
        doc = json.loads(first.column("_line")[0].as_py()) \
            if isinstance(first, pa.RecordBatch) else {}
    except ValueError:
        doc = {}
    if "media" in doc or "release-group" in doc:
        return "releases"
    if "isrcs" in doc or "length" in doc or "title" in doc:
        return "tracks"
    if "name" in doc:
        return "artists"
    raise InputError("cannot tell which MusicBrainz entity this dump holds", file=str(path),
                     expected="a file named artist, release or recording (.jsonl, .gz, .zst)")


def _release_tracks(con: duckdb.DuckDBPyConnection, batch: object, source_id: int) -> None:
    """Keep each release's track list, then place recordings already in the catalog."""
    con.execute("DELETE FROM release_tracks WHERE release_id IN (SELECT eid FROM v)")
    con.execute(f"""
        INSERT INTO release_tracks
        WITH m AS (SELECT eid, unnest(json_extract(_line, '$.media[*]')) AS medium FROM v),
             t AS (SELECT eid, TRY_CAST(json_extract_string(medium, '$.position') AS SMALLINT)
                              AS disc,
                          unnest(json_extract(medium, '$.tracks[*]')) AS track FROM m)
        SELECT eid, json_extract_string(track, '$.recording.id'), disc,
               TRY_CAST(json_extract_string(track, '$.position') AS SMALLINT), {source_id}
        FROM t WHERE json_extract_string(track, '$.recording.id') IS NOT NULL""")
    _place(con, "recording_key IN (SELECT DISTINCT recording_key FROM release_tracks "
                "WHERE release_id IN (SELECT eid FROM v))")


def _recordings(con: duckdb.DuckDBPyConnection, batch: object, source_id: int) -> None:
    """Credit join phrases ('feat.', ' & '), and releases for recordings already listed."""
    con.execute("""
        UPDATE track_artists SET join_phrase = j.phrase
        FROM (SELECT eid, generate_subscripts(p, 1) AS pos, unnest(p) AS phrase
              FROM (SELECT eid, json_extract_string(_line, '$."artist-credit"[*].joinphrase')
                               AS p FROM v)) j
        WHERE track_artists.track_id = j.eid AND track_artists.position = j.pos
          AND j.phrase <> ''""")
    _place(con, "recording_key IN (SELECT skey FROM v)")


def _place(con: duckdb.DuckDBPyConnection, which: str) -> None:
    """Give MusicBrainz tracks without a release the first release that lists them."""
    con.execute(f"""
        UPDATE tracks SET release_id = p.release_id, disc_number = p.disc,
                          track_number = p.pos
        FROM (SELECT recording_key, arg_min(release_id, (release_id, disc_number, track_number))
                     AS release_id,
                     arg_min(disc_number, (release_id, disc_number, track_number)) AS disc,
                     arg_min(track_number, (release_id, disc_number, track_number)) AS pos
              FROM release_tracks WHERE {which} GROUP BY recording_key) p
        WHERE tracks.track_id = sk_id('track', '{SOURCE}', p.recording_key)
          AND tracks.release_id IS NULL""")


def ingest_musicbrainz(arch: Archive, paths: Iterable[Path],
                       on_progress: Progress | None = None) -> list[IngestResult]:
    """Ingest MusicBrainz JSON dump files (artists, then releases, then recordings)."""
    results = []
    order = {"artists": 0, "releases": 1, "tracks": 2}
    files = []
    for path in expand(paths):
        try:
            files.append((order[entity_of(path)], path))
        except InputError as exc:
            results.append(IngestResult(file=str(path), error=exc.one_line()))
    for _, path in sorted(files, key=lambda f: (f[0], str(f[1]))):
        entity = entity_of(path)
        hook = {"releases": _release_tracks, "tracks": _recordings}.get(entity)
        try:
            results.append(ingest_file(arch, path, fmt="jsonl", mapping=MAPPINGS[entity],
                                       on_progress=on_progress, after_batch=hook))
        except InputError as exc:
            results.append(IngestResult(file=str(path), error=exc.one_line()))
    return results
