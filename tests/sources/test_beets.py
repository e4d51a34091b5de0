"""beets library import. The fixture is a SQLite file with beets' `items` table layout
(columns as beets' Item model declares them: title, artist, album, track, disc, length in
seconds, mb_trackid, path stored as bytes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from soundkeep.archive import Archive
from soundkeep.db import stable_id
from soundkeep.sources.beets import ingest_beets

MBID = "0b382a13-32f0-4743-9248-ba5536a6115e"


def make_library(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("""CREATE TABLE items (id INTEGER PRIMARY KEY, path BLOB, album_id INTEGER,
        title TEXT, artist TEXT, albumartist TEXT, album TEXT, genre TEXT, year INTEGER,
        track INTEGER, disc INTEGER, length REAL, bitrate INTEGER, format TEXT,
        mb_trackid TEXT, mb_albumid TEXT)""")
    con.execute("CREATE TABLE albums (id INTEGER PRIMARY KEY, album TEXT, albumartist TEXT)")
    rows = [
        (1, b"/music/a/01 First.flac", "First", "Artist A", "Album", 1, 1, 200.4, MBID),
        (2, b"/music/a/02 Second.flac", "Second", "Artist A", "Album", 2, 1, 180.0, ""),
        (3, b"/music/b/x.ogg", None, "Artist B", "Other", 1, 1, 10.0, None),
    ]
    con.executemany("INSERT INTO items (id, path, title, artist, album, track, disc, length, "
                    "mb_trackid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def test_beets_items_become_tracks_with_known_paths(arch: Archive, tmp_path: Path) -> None:
    lib = tmp_path / "library.db"
    make_library(lib)
    [res] = ingest_beets(arch, [lib])
    assert (res.rows_read, res.rows_accepted, res.rows_quarantined) == (3, 2, 1)
    con = arch.con
    tracks = con.execute("SELECT title, duration_ms, track_number, source_key FROM tracks "
                         "ORDER BY track_number").fetchall()
    assert tracks == [("First", 200400, 1, MBID), ("Second", 180000, 2, "beets-item-2")]
    paths = dict(con.execute("SELECT path, track_id FROM known_paths").fetchall())
    assert paths == {"/music/a/01 First.flac": stable_id("track", "beets", MBID),
                     "/music/a/02 Second.flac": stable_id("track", "beets", "beets-item-2")}
    # One album found-or-created by name, credited to its artist.
    assert con.execute("SELECT count(*) FROM releases").fetchall() == [(1,)]
    q = con.execute("SELECT row_number, field FROM quarantine").fetchall()
    assert q == [(3, "title")]


def test_not_a_beets_library(arch: Archive, tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    [res] = ingest_beets(arch, [db])
    assert res.error and "not a beets library" in res.error
