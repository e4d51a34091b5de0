"""A corpus of malformed inputs: each gives one clear line and exit 2 (the file refused whole,
the catalog unchanged) or quarantine entries with file, row, field, value and reason; never a
traceback, and every summary holds rows read = accepted + quarantined."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from catfix import PLAIN_HEADER, dump_catalog, run_cli

H = ",".join(PLAIN_HEADER) + "\n"
GOOD = "Fine,Ann,LP,USRC17607839,180000,5\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40)


def parquet_bytes(n: int = 4000, compression: str = "snappy") -> bytes:
    t = pa.table({"title": [f"title number {i}" for i in range(n)],
                  "isrc": [f"USRC1{i % 100:02d}{i:05d}" for i in range(n)],
                  "duration_ms": list(range(n))})
    buf = io.BytesIO()
    pq.write_table(t, buf, row_group_size=1000, compression=compression)
    return buf.getvalue()


def corrupt_middle(compression: str) -> Callable[[Path], None]:
    """A Parquet file whose footer is fine but a data page in the middle is garbage."""

    def write(p: Path) -> None:
        data = bytearray(parquet_bytes(compression=compression))
        p.write_bytes(bytes(data))
        col = pq.read_metadata(p).row_group(2).column(0)
        mid = col.data_page_offset + col.total_compressed_size // 2
        data[mid:mid + 64] = bytes(range(64))
        p.write_bytes(bytes(data))

    return write


def sqlite_file(tables: list[str]) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        con = sqlite3.connect(p)
        for t in tables:
            con.execute(f"CREATE TABLE {t} (title TEXT)")
            con.execute(f"INSERT INTO {t} VALUES ('x')")
        con.commit()
        con.close()

    return write


def text(s: str | bytes) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        p.write_bytes(s if isinstance(s, bytes) else s.encode("utf-8"))

    return write


def truncated(kind: str) -> Callable[[Path], None]:
    """The first half of a compressed file of 3,000 rows (JSON Lines or CSV)."""

    def write(p: Path) -> None:
        if ".jsonl" in p.name:
            data = "".join(json.dumps({"title": f"t{i}", "n": i * 7919 % 10007}) + "\n"
                           for i in range(3000))
        else:
            data = H + "".join(f"t{i},a{i * 7919 % 10007},b,,{i},1\n" for i in range(3000))
        raw = (gzip.compress(data.encode()) if kind == "gz"
               else zstandard.ZstdCompressor().compress(data.encode()))
        p.write_bytes(raw[: len(raw) // 2])

    return write


@dataclass
class Refused:
    """The file is refused whole: exit 2 and one line naming `names` and saying `says`."""

    name: str
    write: Callable[[Path], None]
    says: str
    args: tuple[str, ...] = ()
    row: int | None = None
    names: str | None = None  # what the line must name (default: the file)
    recorded: bool = True  # a refusal of the file itself is kept in quarantine


@dataclass
class Quarantined:
    """The file is read; these rows go to quarantine as (row, field, value, reason part)."""

    name: str
    write: Callable[[Path], None]
    expect: list[tuple[int, str | None, str | None, str]]
    accepted: int = 1
    args: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


MAPPING_UNKNOWN = "[fields]\nsongname = \"title\"\n"
MAPPING_MISSING = "[fields]\ntitle = \"Track Name\"\n"
MAPPING_BAD_TOML = "[fields\ntitle = 1\n"
MAPPING_BAD_KEY = "tabel = \"songs\"\n"

REFUSED = [
    Refused("png.csv", text(PNG), "PNG image"),
    Refused("jpeg.jsonl", text(b"\xff\xd8\xff\xe0" + bytes(60)), "JPEG image"),
    Refused("zip.csv", text(b"PK\x03\x04" + bytes(60)), "ZIP archive"),
    Refused("empty.csv", text(b""), "empty file"),
    Refused("whitespace.csv", text("  \n\n"), "no data rows"),
    Refused("header_only.csv", text(H), "no data rows"),
    Refused("blank_lines.jsonl", text("\n\n\n"), "no data rows"),
    Refused("latin1.csv", text((H + "Café,Ann,LP,,1,1\n").encode("latin-1")), "not valid UTF-8",
            row=1),
    Refused("latin1_late.csv", text((H + GOOD * 2999 + "Ève,Ann,LP,,1,1\n").encode("latin-1")),
            "not valid UTF-8", row=3000),
    Refused("latin1.jsonl", text('{"title": "Caf\xe9"}\n'.encode("latin-1")), "not valid UTF-8"),
    Refused("nul_head.csv", text(H + "A\x00B,Ann,LP,,1,1\n"), "binary data"),
    Refused("truncated.parquet", text(parquet_bytes()[:3000]), "truncated or corrupt Parquet"),
    Refused("corrupt_snappy.parquet", corrupt_middle("snappy"), "corrupt Parquet data"),
    Refused("corrupt_plain.parquet", corrupt_middle("none"), "corrupt Parquet data"),
    Refused("corrupt_zstd.parquet", corrupt_middle("zstd"), "corrupt Parquet data"),
    Refused("really_csv.parquet", text(H + GOOD), "not a parquet file"),
    Refused("claimed.csv", text(H + GOOD), "not a parquet file", args=("--format", "parquet")),
    Refused("parquet_as_csv.dat", text(parquet_bytes(10)), "parquet file, not csv",
            args=("--format", "csv")),
    Refused("text.sqlite", text(H + GOOD), "not a sqlite file"),
    Refused("truncated.jsonl.gz", truncated("gz"), "compressed stream is damaged"),
    Refused("truncated.jsonl.zst", truncated("zst"), "compressed stream is damaged"),
    Refused("truncated.csv.gz", truncated("gz"), "compressed stream is damaged"),
    Refused("truncated.csv.zst", truncated("zst"), "compressed stream is damaged"),
    Refused("two_tables.sqlite", sqlite_file(["songs", "other"]), "which table"),
    Refused("no_such_table.sqlite", sqlite_file(["songs"]), "no such table",
            args=("--table", "nope")),
    Refused("no_title.csv", text("artist,album\nAnn,LP\n"), "required field 'title'"),
    Refused("no_title.parquet", text(b""), "required field 'title'"),  # written below
    Refused("dup_header.csv", text("title,artist,title\nA,B,C\n"), "duplicate column names"),
    Refused("unknown_format.csv", text(H + GOOD), "unknown format", args=("--format", "xls"),
            names="--format", recorded=False),
    Refused("map_unknown_field.csv", text(H + GOOD), "not a catalog field",
            args=("--mapping", "{map}"), names="map.toml", recorded=False,),
    Refused("map_missing_column.csv", text(H + GOOD), "mapped column not in the file",
            args=("--mapping", "{map}"), recorded=False),
    Refused("map_bad_toml.csv", text(H + GOOD), "not a readable TOML mapping",
            args=("--mapping", "{map}"), names="map.toml", recorded=False),
    Refused("map_bad_key.csv", text(H + GOOD), "unknown key", args=("--mapping", "{map}"),
            names="map.toml", recorded=False),
    Refused("missing.csv", lambda p: None, "no such file", recorded=False),
    Refused("unknown_entity.csv", text(H + GOOD), "unknown entity",
            args=("--entity", "songs"), names="--entity", recorded=False),
]
MAPPINGS = {"map_unknown_field.csv": MAPPING_UNKNOWN, "map_missing_column.csv": MAPPING_MISSING,
            "map_bad_toml.csv": MAPPING_BAD_TOML, "map_bad_key.csv": MAPPING_BAD_KEY}

QUARANTINED = [
    Quarantined("unterminated_quote.csv", text(H + GOOD + '"Oops,Ann,LP,,1,1\n'),
                [(2, None, '"Oops,Ann,LP,,1,1', "expected 6 fields, found 1")]),
    Quarantined("too_many_fields.csv", text(H + "A,B,C,,1,1,extra\n" + GOOD),
                [(1, None, "A,B,C,,1,1,extra", "expected 6 fields, found 7")]),
    Quarantined("invalid_isrc.csv", text(H + "A,Ann,LP,US-RC1-76-0783,1,1\n" + GOOD),
                [(1, "isrc", "US-RC1-76-0783", "not a valid ISRC")]),
    Quarantined("isrc_letters_in_year.csv", text(H + GOOD + "A,Ann,LP,USRC1AB07839,1,1\n"),
                [(2, "isrc", "USRC1AB07839", "not a valid ISRC")]),
    Quarantined("negative_duration.csv", text(H + "A,Ann,LP,,-5,1\n" + GOOD),
                [(1, "duration_ms", "-5", "out of range")]),
    Quarantined("popularity_101.csv", text(H + "A,Ann,LP,,5,101\n" + GOOD),
                [(1, "popularity", "101", "between 0 and 100")]),
    Quarantined("non_numeric.csv", text(H + "A,Ann,LP,,three minutes,1\n" + GOOD),
                [(1, "duration_ms", "three minutes", "not a whole number")]),
    Quarantined("overflow.csv", text(H + "A,Ann,LP,,99999999999999999999,1\n" + GOOD),
                [(1, "duration_ms", "99999999999999999999", "not a whole number")]),
    Quarantined("huge_field.csv", text(H + "T" * 10_001 + ",Ann,LP,,1,1\n" + GOOD),
                [(1, "title", "T" * 200, "longer than 10000 characters")]),
    Quarantined("huge_artist.csv", text(H + "A," + "N" * 10_001 + ",LP,,1,1\n" + GOOD),
                [(1, "artists", None, "longer than 10000 characters")]),
    Quarantined("empty_title.csv", text(H + ' ,Ann,LP,,1,1\n' + GOOD),
                [(1, "title", None, "missing")]),
    Quarantined("nul_late.csv", text(H + GOOD * 300 + "A\x00B,Ann,LP,,1,1\n"),
                [(301, "title", "A\x00B", "NUL character")], accepted=300),
    Quarantined("unknown_rights.csv",
                text("title,rights_status\nA,stolen\nB,CC-BY-4.0\nC,CC-BY-9.9\n"),
                [(1, "rights_status", "stolen", "unknown rights status"),
                 (3, "rights_status", "CC-BY-9.9", "unknown rights status")]),
    Quarantined("bad_explicit.csv", text("title,explicit\nA,maybe\nB,yes\n"),
                [(1, "explicit", "maybe", "not a boolean")]),
    Quarantined("bad_tempo.csv", text("title,tempo\nA,fast\nB,inf\nC,120.5\n"),
                [(1, "tempo", "fast", "not a finite number"),
                 (2, "tempo", "inf", "not a finite number")]),
    Quarantined("disc_1000.csv", text("title,disc_number\nA,1000\nB,2\n"),
                [(1, "disc_number", "1000", "between 0 and 999")]),
    Quarantined("releases_bad_upc.csv",
                text("title,upc\nA,036000291453\nB,036000291452\n"),
                [(1, "upc", "036000291453", "not a valid barcode")], args=("--entity", "releases")),
    Quarantined("releases_bad_date.csv",
                text("title,release_date\nA,2020-13-45\nB,31/12/2020\nC,2020-02\n"),
                [(1, "release_date", "2020-13-45", "not a date"),
                 (2, "release_date", "31/12/2020", "not a date")],
                args=("--entity", "releases")),
    Quarantined("artists_negative_followers.csv",
                text("name,followers\nAnn,-3\nBo,10\n"),
                [(1, "followers", "-3", "out of range")], args=("--entity", "artists")),
    Quarantined("not_json.jsonl", text('{"title": "A"}\n{"title": "B",\n'),
                [(2, None, '{"title": "B",', "not valid JSON")]),
    Quarantined("array_line.jsonl", text('["A", "B"]\n{"title": "A"}\n'),
                [(1, None, '["A", "B"]', "expected a JSON object")]),
    Quarantined("json_bad_values.jsonl",
                text('{"title": "A", "popularity": "high"}\n{"title": null}\n{"title": "C"}\n'),
                [(1, "popularity", "high", "not a whole number"), (2, "title", None, "missing")]),
    Quarantined("json_nul.jsonl", text('{"title": "A\\u0000B"}\n{"title": "C"}\n'),
                [(1, "title", "A\x00B", "NUL character")]),
    Quarantined("parquet_bad_values.parquet", lambda p: pq.write_table(pa.table({
        "title": ["A", None, "C"], "popularity": pa.array([5, 300, 7], pa.int32()),
        "isrc": ["USRC17607839", "USRC17607839", "nope"]}), p),
        [(2, "title", None, "missing"), (3, "isrc", "nope", "not a valid ISRC")]),
    Quarantined("sqlite_bad_values.sqlite", lambda p: _sqlite_values(p),
                [(2, "duration_ms", "long", "not a whole number")]),
]


def _sqlite_values(p: Path) -> None:
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE tracks (title TEXT, duration_ms)")
    con.executemany("INSERT INTO tracks VALUES (?, ?)", [("A", 1000), ("B", "long")])
    con.commit()
    con.close()


def test_corpus_is_large_enough() -> None:
    """The issue asks for at least 30 malformed inputs."""
    assert len(REFUSED) + len(QUARANTINED) >= 30
    assert len({c.name for c in [*REFUSED, *QUARANTINED]}) == len(REFUSED) + len(QUARANTINED)


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_refused_whole(case: Refused, new_archive: Callable[..., Path], data_dir: Path) -> None:
    """One line on stderr naming the file (or option) and the problem, exit 2, no traceback;
    the catalog is unchanged and the refusal is recorded in quarantine."""
    root = new_archive()
    path = data_dir / case.name
    if case.name == "no_title.parquet":
        pq.write_table(pa.table({"name_of_song": ["x"]}), path)
    else:
        case.write(path)
    args = list(case.args)
    if "{map}" in args:
        m = data_dir.parent / "map.toml"
        m.write_text(MAPPINGS[case.name])
        args[args.index("{map}")] = str(m)
    res = run_cli("ingest", path, "-a", root, "--json", *args)
    assert res.exception is None
    assert "Traceback" not in res.err
    assert res.code == 2
    lines = res.error_lines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: ")
    assert (case.names or str(path)) in line
    assert case.says in line, line
    if case.row is not None:
        assert f"row {case.row}:" in line
    if res.out.strip():  # the JSON summary, when the command got as far as reading files
        summary = res.json()
        assert summary["refused_files"] == 1
        assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_quarantined"]
        assert summary["files"][0]["error"] and case.says in summary["files"][0]["error"]
    after = dump_catalog(root)
    recorded = after.pop("quarantine")
    after.pop("meta")
    assert {t: rows for t, rows in after.items() if rows} == {}  # nothing reached the catalog
    if case.recorded:
        assert len(recorded) == 1
        stage, file, _row, fld, value, reason = recorded[0]
        assert (stage, file, fld, value) == ("ingest", str(path), None, None)
        assert case.says.split("'")[0] in reason
    else:
        assert recorded == []


@pytest.mark.parametrize("case", QUARANTINED, ids=lambda c: c.name)
def test_rows_quarantined(case: Quarantined, new_archive: Callable[..., Path], data_dir: Path
                          ) -> None:
    """Bad rows go to quarantine with file, row, field, value and reason; good rows of the
    same file are accepted; exit 0; rows read = accepted + quarantined."""
    root = new_archive()
    path = data_dir / case.name
    case.write(path)
    res = run_cli("ingest", path, "-a", root, "--json", *case.args)
    assert res.exception is None
    assert "Traceback" not in res.err
    assert res.code == 0, res.err
    summary = res.json()
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_quarantined"]
    assert summary["rows_quarantined"] == len(case.expect)
    assert summary["rows_accepted"] == case.accepted
    q = run_cli("quarantine", "-a", root, "--json").json()
    assert q["total"] == len(case.expect)
    got = sorted(q["rows"], key=lambda r: r["row"])
    for row, (line, fld, value, reason) in zip(got, case.expect, strict=True):
        assert row["stage"] == "ingest"
        assert row["file"] == str(path.resolve())
        assert row["row"] == line
        assert row["field"] == fld
        if value is not None:
            assert row["value"] == value
        assert reason in row["reason"], row
    # The quarantine export has the same rows, one per line.
    export = data_dir.parent / "q.csv"
    assert run_cli("quarantine", "-a", root, "--export", export).code == 0
    assert len(export.read_text(encoding="utf-8").splitlines()) >= len(case.expect) + 1
