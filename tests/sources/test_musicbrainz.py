"""MusicBrainz JSON dump importer.

Fixture lines follow the published JSON dumps (one web-service JSON document per line, files
named artist / release / recording; see the MusicBrainz JSON Data Dumps documentation and the
WS/2 JSON rendering of each entity).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from soundkeep.archive import Archive
from soundkeep.db import stable_id
from soundkeep.sources.musicbrainz import ingest_musicbrainz

A1 = "a74b1b7f-71a5-4011-9441-d0b5e4122711"  # artists
A2 = "5b11f4ce-a62d-471e-81fc-a69a8278c7da"
REL = "b84ee12a-09ef-421b-82de-0441a926375b"
REC1 = "0b382a13-32f0-4743-9248-ba5536a6115e"
REC2 = "6b9e7ba0-7c2b-4b1c-9a0d-0d7a4b2a9a11"


def _credit(*pairs: tuple[str, str, str]) -> list[dict[str, object]]:
    return [{"name": n, "joinphrase": j, "artist": {"id": i, "name": n}} for i, n, j in pairs]


def write_dump(d: Path, compress: bool = False) -> list[Path]:
    artists = [
        {"id": A1, "name": "Radiohead", "sort-name": "Radiohead", "type": "Group",
         "genres": [{"name": "alternative rock", "count": 10}, {"name": "art rock", "count": 5}]},
        {"id": A2, "name": "Thom Yorke", "type": "Person", "genres": []},
    ]
    release = {
        "id": REL, "title": "In Rainbows", "date": "2007-10-10", "barcode": "634904032463",
        "status": "Official", "release-group": {"primary-type": "Album"},
        "label-info": [{"catalog-number": "XL", "label": {"name": "XL Recordings"}}],
        "artist-credit": _credit((A1, "Radiohead", "")),
        "media": [{"position": 1, "format": "CD", "tracks": [
            {"position": 1, "number": "1", "title": "15 Step", "length": 237000,
             "recording": {"id": REC1, "title": "15 Step"}},
            {"position": 2, "number": "2", "title": "Bodysnatchers", "length": 242000,
             "recording": {"id": REC2, "title": "Bodysnatchers"}},
        ]}],
    }
    recordings = [
        {"id": REC1, "title": "15 Step", "length": 237000, "isrcs": ["GBSTK0700001"],
         "artist-credit": _credit((A1, "Radiohead", " feat. "), (A2, "Thom Yorke", ""))},
        {"id": REC2, "title": "Bodysnatchers", "length": 242000, "isrcs": [],
         "artist-credit": _credit((A1, "Radiohead", ""))},
        {"id": "not-a-uuid-title-missing", "length": 1},
    ]
    files = []
    for name, docs in (("recording", recordings), ("artist", artists), ("release", [release])):
        text = "\n".join(json.dumps(doc) for doc in docs) + "\n"
        if name == "recording":
            text += "{broken json\n"
        p = d / (name + (".jsonl.gz" if compress else ".jsonl"))
        p.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
        files.append(p)
    return files


def test_musicbrainz_dump_builds_linked_catalog(arch: Archive, tmp_path: Path) -> None:
    files = write_dump(tmp_path, compress=True)
    results = ingest_musicbrainz(arch, files)
    assert [r.entity for r in results] == ["artists", "releases", "tracks"]
    rec = results[2]
    assert (rec.rows_read, rec.rows_accepted, rec.rows_quarantined) == (4, 2, 2)
    con = arch.con
    t1 = stable_id("track", "musicbrainz", REC1)
    row = con.execute("SELECT title, isrc, duration_ms, release_id, disc_number, track_number, "
                      "source_key FROM tracks WHERE track_id = ?", [t1]).fetchall()
    assert row == [("15 Step", "GBSTK0700001", 237000, stable_id("release", "musicbrainz", REL),
                    1, 1, REC1)]
    credits = con.execute("SELECT a.name, ta.position, ta.join_phrase FROM track_artists ta "
                          "JOIN artists a USING (artist_id) WHERE track_id = ? ORDER BY 2",
                          [t1]).fetchall()
    assert credits == [("Radiohead", 1, " feat. "), ("Thom Yorke", 2, None)]
    rel = con.execute("SELECT title, release_type, upc, label, release_date::VARCHAR, "
                      "release_date_precision FROM releases").fetchall()
    assert rel == [("In Rainbows", "album", "634904032463", "XL Recordings", "2007-10-10", "day")]
    genres = con.execute("SELECT genre FROM artist_genres ORDER BY 1").fetchall()
    assert genres == [("alternative rock",), ("art rock",)]
    reasons = {r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall()}
    assert "not valid JSON" in reasons
    assert any("missing" in r for r in reasons)


def test_recordings_before_releases_still_get_positions(arch: Archive, tmp_path: Path) -> None:
    rec, _, rel = write_dump(tmp_path)
    ingest_musicbrainz(arch, [rec])
    t2 = stable_id("track", "musicbrainz", REC2)
    assert arch.con.execute("SELECT release_id FROM tracks WHERE track_id = ?",
                            [t2]).fetchall() == [(None,)]
    ingest_musicbrainz(arch, [rel])
    assert arch.con.execute("SELECT track_number FROM tracks WHERE track_id = ?",
                            [t2]).fetchall() == [(2,)]


def test_musicbrainz_ingest_is_idempotent(arch: Archive, tmp_path: Path) -> None:
    files = write_dump(tmp_path)
    ingest_musicbrainz(arch, files)
    snapshot = arch.con.execute("SELECT * FROM tracks ORDER BY track_id").fetchall()
    again = ingest_musicbrainz(arch, files)
    assert all(r.skipped for r in again)
    assert arch.con.execute("SELECT * FROM tracks ORDER BY track_id").fetchall() == snapshot
