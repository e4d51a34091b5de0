"""Catalog rows from the tags of audio files the operator holds (Vorbis comments, ID3, MP4).

For a collection that has no catalog of its own (ripped media, a folder of openly licensed
recordings): every audio file becomes a catalog track, keyed by its MusicBrainz recording id
when tagged, else by its path; its rights come from `--rights`, else from a licence tag (a
Creative Commons URL becomes its SPDX id), else `unknown`. Each file's path goes to
`known_paths`, so `soundkeep scan` links it at once.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from soundkeep.archive import Archive
from soundkeep.catalog.ingest import IngestResult, Progress, ingest_file
from soundkeep.catalog.mapping import Mapping
from soundkeep.catalog.readers import Opened
from soundkeep.errors import InputError

SOURCE = "tags"
AUDIO_SUFFIXES = {".ogg", ".oga", ".opus", ".flac", ".mp3", ".m4a", ".mp4", ".aac", ".wav",
                  ".wv", ".ape", ".aiff", ".aif"}
_CC_URL = re.compile(r"creativecommons\.org/(licenses|publicdomain)/([a-z-]+)/(\d\.\d)", re.I)


def license_to_rights(text: str | None) -> str | None:
    """A licence tag as a rights status: CC URLs and ids become SPDX ids ('CC-BY-SA-3.0')."""
    if not text:
        return None
    m = _CC_URL.search(text)
    if m:
        kind, version = m.group(2).lower(), m.group(3)
        if kind == "zero":
            return f"CC0-{version}"
        if kind == "mark":
            return "public_domain"
        return "CC-" + kind.upper() + "-" + version
    t = text.strip()
    if re.fullmatch(r"CC0-1\.0|CC-BY(-NC)?(-ND|-SA)?-[1-4]\.[0-5]", t, re.I):
        return t.upper()
    if t.lower() in ("public domain", "public_domain", "pd"):
        return "public_domain"
    return None


def audio_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Audio files below the given paths (by suffix), in a stable order."""
    for p in paths:
        if p.is_file():
            yield p.resolve()
        elif p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in AUDIO_SUFFIXES:
                        yield (Path(root) / name).resolve()
        else:
            raise InputError("no such file or directory", file=str(p))


def _first(tags: Any, *keys: str) -> str | None:
    for key in keys:
        try:
            value = tags.get(key) if tags is not None else None
        except (KeyError, ValueError):
            value = None
        if value:
            text = str(value[0] if isinstance(value, list) else value).strip()
            if text:
                return text
    return None


def read_tags(path: Path) -> dict[str, Any]:
    """The catalog fields one audio file's tags give; an unreadable file gives only its name."""
    import mutagen

    row: dict[str, Any] = {"title": path.stem, "path": str(path)}
    try:
        audio = mutagen.File(path, easy=True)
    except Exception as exc:  # mutagen raises many kinds for damaged files
        row["error"] = f"unreadable tags: {type(exc).__name__}"
        return row
    if audio is None:
        row["error"] = "not an audio file mutagen knows"
        return row
    tags = audio.tags
    row["title"] = _first(tags, "title") or path.stem
    artists = tags.get("artist") if tags is not None else None
    row["artists"] = [str(a) for a in artists] if artists else []
    row["album"] = _first(tags, "album")
    row["isrc"] = _first(tags, "isrc")
    row["mbid"] = _first(tags, "musicbrainz_trackid")
    for key, field in (("tracknumber", "track_number"), ("discnumber", "disc_number")):
        value = _first(tags, key)
        row[field] = value.split("/")[0] if value else None
    length = getattr(audio.info, "length", None)
    row["duration_ms"] = round(length * 1000) if length else None
    row["license"] = _first(tags, "license", "copyright")
    return row


def ingest_tags(arch: Archive, paths: Iterable[Path], rights: str | None = None,
                on_progress: Progress | None = None) -> list[IngestResult]:
    """Make catalog tracks from the tags of the audio files below each path."""
    results = []
    for root in paths:
        files = list(audio_files([root]))
        rows = [read_tags(f) for f in files]
        listing = hashlib.sha256()
        for f in files:
            st = f.stat()
            listing.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        listing.update(f"rights={rights}".encode())
        table = pa.table({
            "id": [r.get("mbid") or "path:" + r["path"] for r in rows],
            "title": [r["title"] for r in rows],
            "artists": pa.array([r.get("artists", []) for r in rows], pa.list_(pa.string())),
            "album": [r.get("album") for r in rows],
            "isrc": [r.get("isrc") for r in rows],
            "track_number": [r.get("track_number") for r in rows],
            "disc_number": [r.get("disc_number") for r in rows],
            "duration_ms": pa.array([r.get("duration_ms") for r in rows], pa.int64()),
            "rights_status": [rights or license_to_rights(r.get("license")) for r in rows],
            "path": [r["path"] for r in rows],
            "_row": pa.array(range(1, len(rows) + 1), pa.int64()),
        })
        batches = [b for b in table.to_batches()] if len(rows) else []
        opened = Opened(path=root, fmt="tags", batches=iter(batches), total_rows=len(rows))
        try:
            results.append(ingest_file(
                arch, root, mapping=Mapping(entity="tracks", source=SOURCE), opened=opened,
                digest=listing.hexdigest(), on_progress=on_progress, after_batch=_paths))
        except InputError as exc:
            results.append(IngestResult(file=str(root), error=exc.one_line()))
    return results


def _paths(con: duckdb.DuckDBPyConnection, batch: object, source_id: int) -> None:
    """Record each accepted file's path for the audio scan (replacing an earlier record)."""
    if not isinstance(batch, pa.RecordBatch):
        return
    con.register("tags_raw", batch.select(["_row", "path"]))
    con.execute("DELETE FROM known_paths WHERE path IN (SELECT path FROM tags_raw)")
    con.execute(f"""INSERT INTO known_paths
        SELECT r.path, v.eid, {source_id} FROM tags_raw r JOIN v USING (_row)""")
    con.unregister("tags_raw")
