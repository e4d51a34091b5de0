"""Every reader (CSV, TSV, JSON Lines plain/.gz/.zst, Parquet, SQLite) and the mapping file."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import zstandard
from catfix import PLAIN_HEADER, query, run_cli, set_setting, track_view, write_csv

from soundkeep.catalog.readers import open_source
from soundkeep.catalog.synth import write_catalog

RECORDS: list[dict[str, Any]] = [
    {"title": "Song A", "artist": "Alice", "album": "First", "isrc": "us-rc1-76-07839",
     "duration_ms": 180000, "popularity": 10},
    {"title": "Song B", "artist": "Alice", "album": "First", "isrc": "GBAYE0000351",
     "duration_ms": 200000, "popularity": 55},
    {"title": "Song C", "artist": "Bob", "album": "Second", "isrc": None,
     "duration_ms": 95000, "popularity": 0},
    # Leading zeros and digits-only text must stay text (no type guessing).
    {"title": "007", "artist": "Carol", "album": "0123", "isrc": "QZ7A01900001",
     "duration_ms": 1, "popularity": 100},
]
EXPECTED = sorted([
    ("Song A", "Alice", "First", "USRC17607839", 180000, 10),
    ("Song B", "Alice", "First", "GBAYE0000351", 200000, 55),
    ("Song C", "Bob", "Second", None, 95000, 0),
    ("007", "Carol", "0123", "QZ7A01900001", 1, 100),
])


def ingest_ok(root: Path, *args: str | Path) -> dict[str, Any]:
    """`soundkeep ingest ... --json` succeeds, and rows read = accepted + quarantined."""
    res = run_cli("ingest", *args, "-a", root, "--json")
    assert res.code == 0, res.err
    assert "Traceback" not in res.err
    summary = res.json()
    assert summary["refused_files"] == 0
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_quarantined"]
    for f in summary["files"]:
        assert f["rows_read"] == f["rows_accepted"] + f["rows_quarantined"]
    return summary


def plain_rows() -> list[list[Any]]:
    return [["" if r[k] is None else r[k] for k in PLAIN_HEADER] for r in RECORDS]


def jsonl_bytes(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_plain_csv_header_needs_no_mapping(new_archive: Callable[..., Path], data_dir: Path
                                           ) -> None:
    """title,artist,album,isrc,duration_ms,popularity ingests as it is: one artist and one
    album per row, found or created by name, with provenance on every row."""
    root = new_archive()
    src = write_csv(data_dir / "plain.csv", PLAIN_HEADER, plain_rows())
    summary = ingest_ok(root, src)
    assert (summary["rows_read"], summary["rows_accepted"]) == (4, 4)
    assert summary["files"][0]["format"] == "csv"
    assert summary["files"][0]["entity"] == "tracks"
    assert track_view(root) == EXPECTED
    # Alice's two tracks share one artist and one album; the album credits its artist.
    assert query(root, "SELECT count(*) FROM artists")[0][0] == 3
    assert query(root, "SELECT count(*) FROM releases")[0][0] == 3
    assert query(root, """SELECT r.title, a.name FROM release_artists ra
        JOIN releases r USING (release_id) JOIN artists a USING (artist_id)
        ORDER BY 1""") == [("0123", "Carol"), ("First", "Alice"), ("Second", "Bob")]
    # Provenance: the file (by source id), the row in it, and a key; rights default to unknown.
    prov = query(root, """SELECT t.title, t.source_row, s.source_file, s.format, s.sha256,
        t.rights_status, t.distributable, t.source_key IS NOT NULL
        FROM tracks t JOIN sources s USING (source_id) ORDER BY t.source_row""")
    assert [p[:2] for p in prov] == [("Song A", 1), ("Song B", 2), ("Song C", 3), ("007", 4)]
    assert {p[2] for p in prov} == {str(src.resolve())}
    assert all(p[3] == "csv" and len(p[4]) == 64 for p in prov)
    assert all(p[5:] == ("unknown", False, True) for p in prov)


def test_tsv_reads_like_csv(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """A TSV file (tabs, commas inside values) gives the same catalog."""
    root = new_archive()
    rows = plain_rows()
    rows[0][0] = "Song A"
    src = write_csv(data_dir / "plain.tsv", PLAIN_HEADER, rows, delimiter="\t")
    extra = write_csv(data_dir / "more.tsv", ["title", "artist"], [["One, Two", "Dee"]],
                      delimiter="\t")
    summary = ingest_ok(root, src, extra)
    assert [f["format"] for f in summary["files"]] == ["tsv", "tsv"]
    assert track_view(root) == sorted([*EXPECTED, ("One, Two", "Dee", None, None, None, None)])


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson"])
def test_json_lines_plain_gzip_zstd(suffix: str, new_archive: Callable[..., Path],
                                    data_dir: Path) -> None:
    """JSON Lines, plain or compressed, with numbers as JSON numbers, give the same catalog."""
    root = new_archive()
    raw = jsonl_bytes(RECORDS)
    if suffix.endswith(".gz"):
        raw = gzip.compress(raw)
    elif suffix.endswith(".zst"):
        raw = zstandard.ZstdCompressor().compress(raw)
    src = data_dir / f"tracks{suffix}"
    src.write_bytes(raw)
    summary = ingest_ok(root, src)
    fmt = summary["files"][0]["format"]
    assert fmt == {".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonl.gz": "jsonl+gzip",
                   ".jsonl.zst": "jsonl+zstd"}[suffix]
    assert track_view(root) == EXPECTED
    assert query(root, "SELECT list(source_row ORDER BY source_row) FROM tracks")[0][0] == \
        [1, 2, 3, 4]


def test_json_lines_lists_and_blank_lines(new_archive: Callable[..., Path], data_dir: Path
                                          ) -> None:
    """A JSON array of artists keeps its order; blank lines are skipped but counted as rows of
    the file, so row numbers still point at the right line."""
    root = new_archive()
    src = data_dir / "t.jsonl"
    src.write_text('{"title": "Duet", "artists": ["Zed", "Amy"], "explicit": true}\n\n'
                   '{"title": "Solo", "artists": "Amy; Bo", "explicit": "no"}\n')
    ingest_ok(root, src)
    assert query(root, """SELECT t.title, t.source_row, t.explicit,
            list(a.name ORDER BY ta.position)
        FROM tracks t JOIN track_artists ta USING (track_id) JOIN artists a USING (artist_id)
        GROUP BY ALL ORDER BY 1""") == [("Duet", 1, True, ["Zed", "Amy"]),
                                        ("Solo", 3, False, ["Amy", "Bo"])]
    # "Amy" named twice is one artist.
    assert query(root, "SELECT count(*) FROM artists")[0][0] == 3


def test_parquet_typed_columns(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """Parquet with typed columns (integers, booleans, a list of artists) needs no mapping."""
    root = new_archive()
    table = pa.table({
        "title": [r["title"] for r in RECORDS],
        "artists": pa.array([[r["artist"]] for r in RECORDS], pa.list_(pa.string())),
        "album": [r["album"] for r in RECORDS],
        "isrc": [r["isrc"] for r in RECORDS],
        "duration_ms": pa.array([r["duration_ms"] for r in RECORDS], pa.int32()),
        "popularity": pa.array([r["popularity"] for r in RECORDS], pa.int16()),
        "explicit": [True, False, None, True],
        "tempo": pa.array([120.5, None, 90.0, 60.0], pa.float32()),
    })
    src = data_dir / "tracks.parquet"
    pq.write_table(table, src, row_group_size=2)
    summary = ingest_ok(root, src)
    assert summary["files"][0]["format"] == "parquet"
    assert track_view(root) == EXPECTED
    assert query(root, "SELECT count(*) FILTER (WHERE explicit), count(explicit) FROM tracks"
                 ) == [(2, 3)]
    assert query(root, "SELECT list_sort(list(tempo)) FROM audio_features")[0][0] == \
        [60.0, 90.0, 120.5]


def make_sqlite(path: Path, tables: dict[str, list[dict[str, Any]]]) -> Path:
    con = sqlite3.connect(path)
    for name, records in tables.items():
        cols = list(records[0])
        con.execute(f"CREATE TABLE {name} ({', '.join(cols)})")
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(cols))})",
                        [tuple(r[c] for c in cols) for r in records])
    con.commit()
    con.close()
    return path


def test_sqlite_table(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """A SQLite file: its `tracks` table is found by name; another table with --table."""
    root = new_archive()
    src = make_sqlite(data_dir / "lib.sqlite", {"tracks": RECORDS,
                                               "log": [{"x": 1}, {"x": 2}]})
    summary = ingest_ok(root, src)
    assert summary["files"][0]["format"] == "sqlite"
    assert track_view(root) == EXPECTED
    # rowid is the row number.
    assert query(root, "SELECT title FROM tracks WHERE source_row = 4") == [("007",)]

    root2 = new_archive("other")
    songs = [{"name": r["title"], "performer": r["artist"]} for r in RECORDS]
    src2 = make_sqlite(data_dir / "songs.db", {"songs": songs, "log": [{"x": 1}]})
    ingest_ok(root2, src2, "--table", "songs")
    # 'performer' names no catalog field: the tracks come without artists.
    assert [r[:2] for r in track_view(root2)] == sorted((r["title"], None) for r in RECORDS)


def test_mapping_file_for_csv_and_sqlite(new_archive: Callable[..., Path], data_dir: Path
                                         ) -> None:
    """A mapping file names the columns of any export; for SQLite it can name the table or
    give a query with its own row numbers."""
    root = new_archive()
    header = ["Track Name", "Performer", "Record", "Code", "Length (ms)", "Score", "Licence"]
    rows = [[r["title"], r["artist"], r["album"], r["isrc"] or "", r["duration_ms"],
             r["popularity"], "CC-BY-4.0"] for r in RECORDS]
    src = write_csv(data_dir / "export.csv", header, rows)
    mapping = data_dir / "map.toml"
    mapping.write_text("""
entity = "tracks"
source = "my-export"
[fields]
title = "Track Name"
artists = "Performer"
album = "Record"
isrc = "Code"
duration_ms = "Length (ms)"
popularity = "Score"
rights_status = "Licence"
""")
    summary = ingest_ok(root, src, "--mapping", mapping)
    assert summary["files"][0]["source"] == "my-export"
    assert track_view(root) == EXPECTED
    assert query(root, "SELECT DISTINCT rights_status, distributable FROM tracks") == \
        [("CC-BY-4.0", True)]

    root2 = new_archive("sqlite")
    songs = [{"kind": "music" if i != 2 else "talk", "name": r["title"], "who": r["artist"]}
             for i, r in enumerate(RECORDS)]
    db = make_sqlite(data_dir / "songs.sqlite", {"songs": songs, "other": [{"x": 1}]})
    m2 = data_dir / "map2.toml"
    m2.write_text("""
table = "songs"
[fields]
title = "name"
artists = "who"
""")
    ingest_ok(root2, db, "--mapping", m2)
    assert query(root2, "SELECT count(*) FROM tracks")[0][0] == 4
    root3 = new_archive("query")
    m3 = data_dir / "map3.toml"
    m3.write_text("""
query = "SELECT rowid AS _row, * FROM songs WHERE kind = 'music'"
[fields]
title = "name"
artists = "who"
""")
    ingest_ok(root3, db, "--mapping", m3)
    assert query(root3, "SELECT title, source_row FROM tracks ORDER BY 2") == [
        ("Song A", 1), ("Song B", 2), ("007", 4)]


def test_mapping_nested_json_paths(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """Nested JSON: `external_ids.isrc`, `artists[*].name` (every element, in order),
    `album.name` and an index `genres[0]`-style path."""
    root = new_archive()
    docs = [
        {"name": "Song A", "external_ids": {"isrc": "us-rc1-76-07839"},
         "artists": [{"name": "Alice"}, {"name": "Zed"}], "album": {"name": "First"},
         "length": {"ms": 180000}, "labels": ["CC0-1.0", "x"]},
        {"name": "Song B", "external_ids": {"isrc": "GBAYE0000351", "upc": "1"},
         "artists": [{"name": "Alice"}], "album": {"name": "First"},
         "length": {"ms": 200000}, "labels": ["public_domain"]},
        {"name": "No isrc", "external_ids": {}, "artists": [], "album": None,
         "length": {"ms": "x"}, "labels": []},
    ]
    src = data_dir / "spotifyish.jsonl"
    src.write_bytes(jsonl_bytes(docs))
    mapping = data_dir / "map.toml"
    mapping.write_text("""
[fields]
title = "name"
isrc = "external_ids.isrc"
artists = "artists[*].name"
album = "album.name"
duration_ms = "length.ms"
rights_status = "labels[0]"
""")
    summary = ingest_ok(root, src, "--mapping", mapping)
    assert (summary["rows_accepted"], summary["rows_quarantined"]) == (2, 1)
    assert track_view(root) == [
        ("Song A", "Alice & Zed", "First", "USRC17607839", 180000, None),
        ("Song B", "Alice", "First", "GBAYE0000351", 200000, None),
    ]
    assert query(root, "SELECT title, rights_status FROM tracks ORDER BY 1") == [
        ("Song A", "CC0-1.0"), ("Song B", "public_domain")]
    q = run_cli("quarantine", "-a", root, "--json").json()["rows"]
    assert [(r["row"], r["field"], r["value"]) for r in q] == [(3, "duration_ms", "x")]


def test_mapping_parquet_struct_path(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """In Parquet, a dotted path reads a field of a struct column."""
    root = new_archive()
    table = pa.table({
        "name": [r["title"] for r in RECORDS],
        "meta": pa.array([{"isrc": r["isrc"], "length": r["duration_ms"],
                           "album": {"title": r["album"]}} for r in RECORDS]),
        "performers": pa.array([[r["artist"]] for r in RECORDS], pa.list_(pa.string())),
        "score": pa.array([r["popularity"] for r in RECORDS], pa.int64()),
    })
    src = data_dir / "export.parquet"
    pq.write_table(table, src)
    mapping = data_dir / "map.toml"
    mapping.write_text("""
entity = "tracks"
[fields]
title = "name"
isrc = "meta.isrc"
duration_ms = "meta.length"
album = "meta.album.title"
artists = "performers"
popularity = "score"
""")
    ingest_ok(root, src, "--mapping", mapping)
    assert track_view(root) == EXPECTED


def test_releases_and_artists_files(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """Artist and release files (entity from the file name) link to tracks by their ids."""
    root = new_archive()
    artists = write_csv(data_dir / "artists.csv", ["artist_id", "name", "followers",
                                                    "popularity", "genres"],
                        [["a1", "Alice", 1000, 40, "Pop; indie rock"], ["a2", "Bob", 5, 1, ""]])
    releases = write_csv(data_dir / "releases.csv",
                         ["release_id", "title", "album_type", "artist_ids", "upc",
                          "release_date", "total_tracks"],
                         [["r1", "First", "Album", "a1", "036000291452", "2001-05", 2],
                          ["r2", "Second", "single", "a2;a1", "", "1999", 1]])
    tracks = write_csv(data_dir / "tracks.csv",
                       ["track_id", "title", "release_id", "artist_ids", "track_number"],
                       [["t1", "Song A", "r1", "a1", 1], ["t2", "Song B", "r1", "a1", 2],
                        ["t3", "Song C", "r2", "a2;a1", 1]])
    mapping = data_dir.parent / "m.toml"
    mapping.write_text('source = "shop"\n')
    summary = ingest_ok(root, data_dir, "--mapping", mapping)
    assert [f["entity"] for f in summary["files"]] == ["artists", "releases", "tracks"]
    assert str(tracks.resolve()) == summary["files"][2]["file"]
    assert str(artists.resolve()) == summary["files"][0]["file"]
    assert str(releases.resolve()) == summary["files"][1]["file"]
    assert query(root, """SELECT r.title, r.release_type, r.upc, r.release_date,
            r.release_date_precision, list(a.name ORDER BY ra.position)
        FROM releases r JOIN release_artists ra USING (release_id) JOIN artists a USING (artist_id)
        GROUP BY ALL ORDER BY 1""") == [
        ("First", "album", "036000291452", date(2001, 5, 1), "month",
         ["Alice"]),
        ("Second", "single", None, date(1999, 1, 1), "year",
         ["Bob", "Alice"])]
    assert query(root, "SELECT genre FROM artist_genres ORDER BY 1") == [("indie rock",),
                                                                          ("pop",)]
    assert track_view(root) == [("Song A", "Alice", "First", None, None, None),
                                ("Song B", "Alice", "First", None, None, None),
                                ("Song C", "Bob & Alice", "Second", None, None, None)]
    # Ids are stable: the source's own key is kept, soundkeep's id derives from it.
    assert query(root, "SELECT source_key FROM tracks ORDER BY 1") == [("t1",), ("t2",),
                                                                       ("t3",)]


def test_synth_output_ingests_as_it_is(new_archive: Callable[..., Path], synth_small: Path
                                       ) -> None:
    """`soundkeep synth` writes a catalog that `soundkeep ingest DIR` loads with no mapping and
    no quarantine, every reference resolved."""
    root = new_archive()
    summary = ingest_ok(root, synth_small)
    assert [f["entity"] for f in summary["files"]] == ["artists", "releases", "tracks"]
    assert summary["rows_quarantined"] == 0
    meta = pq.read_schema(synth_small / "tracks.parquet").metadata
    n_tracks = pq.read_metadata(synth_small / "tracks.parquet").num_rows
    n_rel = pq.read_metadata(synth_small / "releases.parquet").num_rows
    n_art = pq.read_metadata(synth_small / "artists.parquet").num_rows
    assert {f["source"] for f in summary["files"]} == {meta[b"soundkeep.source"].decode()}
    assert query(root, """SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM releases),
        (SELECT count(*) FROM artists)""") == [(n_tracks, n_rel, n_art)]
    orphans = query(root, """SELECT
        (SELECT count(*) FROM tracks WHERE release_id NOT IN (SELECT release_id FROM releases)),
        (SELECT count(*) FROM track_artists WHERE artist_id NOT IN
            (SELECT artist_id FROM artists)),
        (SELECT count(*) FROM release_artists WHERE artist_id NOT IN
            (SELECT artist_id FROM artists)),
        (SELECT count(*) FROM tracks WHERE track_id NOT IN (SELECT track_id FROM track_artists)),
        (SELECT count(DISTINCT track_id) FROM audio_features)""")
    assert orphans == [(0, 0, 0, 0, n_tracks)]


def test_csv_batches_give_the_same_catalog(new_archive: Callable[..., Path], data_dir: Path
                                           ) -> None:
    """A CSV read 7 rows at a time (artists and albums named across batch boundaries, a
    repeated id later in the file) ends as read in one batch."""
    rows = []
    for i in range(60):
        rows.append([f"id{i % 45}", f"Title {i}", f"Artist {i % 7}", f"Album {i % 5}",
                     str(1000 + i)])
    rows.insert(20, ["id99", "x", "y", "z", "1", "extra"])  # a bad row shifts nothing after it
    src = data_dir / "tracks.csv"
    src.write_text("id,title,artist,album,duration_ms\n"
                   + "\n".join(",".join(r) for r in rows) + "\n")
    batches = list(open_source(src, batch_rows=7).batches)
    assert [b.num_rows for b in batches] == [7] * 8 + [4, 1]  # 60 good rows, then the bad one
    assert batches[-1].column("_row").to_pylist() == [21]
    one = new_archive("one")
    many = new_archive("many")
    set_setting(many, "ingest", "batch_rows", "7")
    s1 = ingest_ok(one, src)
    s2 = ingest_ok(many, src)
    assert s1["rows_read"] == s2["rows_read"]
    assert query(one, "SELECT * EXCLUDE (source_id) FROM tracks ORDER BY ALL") == \
        query(many, "SELECT * EXCLUDE (source_id) FROM tracks ORDER BY ALL")
    assert track_view(one) == track_view(many)
    # Ids repeat (id0..id14 twice): the later row wins.
    assert query(one, "SELECT count(*) FROM tracks")[0][0] == 45
    assert query(one, "SELECT title FROM tracks WHERE source_key = 'id3'") == [("Title 48",)]


def test_synth_files_written_for_a_csv_round_trip(tmp_path: Path,
                                                  new_archive: Callable[..., Path]) -> None:
    """Synth tracks exported to CSV (lists joined with ';') ingest like the Parquet original."""
    out = tmp_path / "syn"
    write_catalog(out, 400, seed=3)
    t = pq.read_table(out / "tracks.parquet")
    cols = {
        "track_id": t["track_id"].cast(pa.string()),
        "title": t["title"],
        "isrc": t["isrc"],
        "duration_ms": t["duration_ms"].cast(pa.string()),
        "popularity": t["popularity"].cast(pa.string()),
        "explicit": t["explicit"].cast(pa.string()),
    }
    csv_path = tmp_path / "tracks.csv"
    pacsv.write_csv(pa.table(cols), csv_path)
    a = new_archive("a")
    b = new_archive("b")
    ingest_ok(a, out / "tracks.parquet", "--source", "s")
    ingest_ok(b, csv_path, "--source", "s")
    sql = ("SELECT track_id, title, isrc, duration_ms, popularity, explicit FROM tracks "
           "ORDER BY ALL")
    assert query(a, sql) == query(b, sql)


def test_spreadsheet_csv(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """A spreadsheet's CSV: byte-order mark, CRLF line ends, quoted commas, quotes and line
    breaks inside values, a latin-1 file read with --encoding."""
    root = new_archive()
    src = data_dir / "excel.csv"
    src.write_bytes("\ufefftitle,artist,popularity\r\n"
                    '"Hello, World",Ann,1\r\n'
                    '"Two\r\nLines","The ""Quoted"" Band",2\r\n'
                    "Plain,Bo,3\r\n".encode("utf-8"))
    ingest_ok(root, src)
    assert query(root, "SELECT source_row, title, popularity FROM tracks ORDER BY 1") == [
        (1, "Hello, World", 1), (2, "Two\r\nLines", 2), (3, "Plain", 3)]
    assert query(root, "SELECT name FROM artists ORDER BY 1") == [
        ("Ann",), ("Bo",), ('The "Quoted" Band',)]
    latin = data_dir / "latin.csv"
    latin.write_bytes("title,artist\nCafé,Zoë\n".encode("latin-1"))
    ingest_ok(root, latin, "--encoding", "latin-1")
    assert query(root, "SELECT title FROM tracks WHERE title LIKE 'Caf%'") == [("Café",)]
