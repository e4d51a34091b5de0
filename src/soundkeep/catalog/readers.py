"""Readers: open a source file, check it is what it claims, and yield Arrow batches.

Every batch carries `_row`, the 1-based row number in the source (data rows, header not
counted), so a refused row can be found again. JSON Lines batches carry the raw line in
`_line`; the catalog ingest extracts fields from it with DuckDB's JSON functions, so lines of
any shape are read and a bad line is one quarantined row, not a failed file.
"""

from __future__ import annotations

import gzip
import io
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from soundkeep import db
from soundkeep.errors import InputError

FORMATS = ("csv", "tsv", "jsonl", "parquet", "sqlite")

_MAGIC = {
    b"PAR1": "parquet",
    b"SQLite format 3\x00": "sqlite",
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_BINARY_KINDS = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"OggS": "an Ogg audio file",
    b"fLaC": "a FLAC audio file",
    b"ID3": "an MP3 audio file",
    b"RIFF": "a RIFF (WAV/AVI) file",
}
_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet", ".sqlite": "sqlite",
           ".sqlite3": "sqlite", ".db": "sqlite"}


@dataclass
class Opened:
    """An opened source: its format, its batches, and what is known of its size."""

    path: Path
    fmt: str
    batches: Iterator[pa.RecordBatch | ParquetRange]
    total_rows: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    position: Callable[[], int] | None = None  # bytes consumed so far (text formats)
    size: int = 0


class _Counting(io.RawIOBase):
    """A read-only stream that counts the bytes handed out (for progress by bytes)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.count += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def sniff(path: Path, claimed: str | None = None) -> str:
    """Decide a file's format from its bytes (and name); refuse what is not a catalog file."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
    if not head:
        raise InputError("empty file", file=str(path),
                         expected="a CSV/TSV with a header, JSON Lines, Parquet or SQLite")
    for magic, kind in _BINARY_KINDS.items():
        if head.startswith(magic):
            raise InputError(f"this is {kind}, not a catalog file", file=str(path),
                             expected=f"{claimed or 'csv, tsv, jsonl, parquet or sqlite'} data")
    found = next((k for m, k in _MAGIC.items() if head.startswith(m)), None)
    suffixes = [s.lower() for s in path.suffixes]
    by_name = next((_SUFFIX[s] for s in reversed(suffixes) if s in _SUFFIX), None)
    if found in ("gzip", "zstd"):
        inner = by_name or "jsonl"
        if claimed and claimed not in ("jsonl", "csv", "tsv"):
            raise InputError(f"this is {found}-compressed text, not {claimed}", file=str(path))
        return f"{claimed or inner}+{found}"
    if found in ("parquet", "sqlite"):
        if claimed and claimed != found:
            raise InputError(f"this is a {found} file, not {claimed}", file=str(path),
                             expected=f"--format {found}")
        return found
    want = claimed or by_name
    if want in ("parquet", "sqlite"):
        raise InputError(f"not a {want} file (its first bytes are not a {want} header)",
                         file=str(path), expected=f"a {want} file, or the right --format")
    if b"\x00" in head:
        raise InputError("binary data, not a text catalog file", file=str(path),
                         expected="UTF-8 text (CSV, TSV or JSON Lines)")
    if want is None:
        first = head.lstrip()[:1]
        want = "jsonl" if first in (b"{", b"[") else ("tsv" if b"\t" in head.split(b"\n")[0]
                                                      else "csv")
    return want


def open_source(path: Path, fmt: str | None = None, batch_rows: int = 500_000,
                encoding: str = "utf-8", table: str | None = None,
                query: str | None = None) -> Opened:
    """Open a catalog source file for batch reading; a file that is not what it claims fails."""
    kind = sniff(path, fmt)
    base, _, compression = kind.partition("+")
    size = path.stat().st_size
    if base == "parquet":
        return _open_parquet(path, batch_rows, size)
    if base == "sqlite":
        return _open_sqlite(path, batch_rows, table, size, query)
    outer = _Counting(path.open("rb"))
    buffered = io.BufferedReader(outer)
    stream: Any
    if compression == "gzip":
        stream = gzip.GzipFile(fileobj=buffered)
    elif compression == "zstd":
        stream = io.BufferedReader(_ZstdReader(buffered), 1 << 20)
    else:
        stream = buffered
    if base == "jsonl":
        batches = _jsonl_batches(path, stream, batch_rows, encoding)
    else:
        batches = _csv_batches(path, stream, base, batch_rows, encoding)
    return Opened(path=path, fmt=kind, batches=batches, position=lambda: outer.count, size=size)


class _ZstdReader(io.RawIOBase):
    """Zstandard frames, one after another, decompressed; a file that ends inside a frame is an
    error (zstandard's own stream reader ends quietly there, losing the rest of the file)."""

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self.raw = raw
        self.make = zstandard.ZstdDecompressor().decompressobj
        self.obj = self.make()
        self.buf = b""
        self.pos = 0
        self.started = False  # inside a frame (some of its bytes were read)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self.pos >= len(self.buf):
            chunk = self.raw.read(1 << 18)
            if not chunk:
                if self.started:
                    raise EOFError("the file ends inside a zstd frame (truncated)")
                return 0
            out = []
            while chunk:
                self.started = True
                out.append(self.obj.decompress(chunk))
                chunk = b""
                if self.obj.eof:
                    chunk = self.obj.unused_data
                    self.obj = self.make()
                    self.started = False
            self.buf, self.pos = b"".join(out), 0
        n = min(len(b), len(self.buf) - self.pos)
        b[:n] = self.buf[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


@dataclass
class ParquetRange:
    """Rows [start, stop) of a Parquet file, read by DuckDB's own reader (whole row groups)."""

    path: Path
    start: int
    stop: int
    schema: pa.Schema

    @property
    def num_rows(self) -> int:
        """Rows in the range."""
        return self.stop - self.start

    def sql(self) -> str:
        """A DuckDB relation over the range, with the 1-based `_row` of every row."""
        lit = db.literal(str(self.path))
        return (f"(SELECT *, file_row_number + 1 AS _row FROM read_parquet({lit}, "
                f"file_row_number = true) WHERE file_row_number >= {self.start} "
                f"AND file_row_number < {self.stop})")


def _open_parquet(path: Path, batch_rows: int, size: int) -> Opened:
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"truncated or corrupt Parquet file ({_first_line(exc)})",
                         file=str(path), expected="a complete Parquet file") from None
    meta = {k.decode(errors="replace"): v.decode(errors="replace")
            for k, v in (schema.metadata or {}).items()}
    # Whole row groups per range (DuckDB skips the others), about batch_rows rows each.
    ranges: list[ParquetRange] = []
    start = stop = 0
    for i in range(pf.metadata.num_row_groups):
        stop += pf.metadata.row_group(i).num_rows
        if stop - start >= batch_rows:
            ranges.append(ParquetRange(path, start, stop, schema))
            start = stop
    if stop > start:
        ranges.append(ParquetRange(path, start, stop, schema))
    return Opened(path=path, fmt="parquet", batches=iter(ranges),
                  total_rows=pf.metadata.num_rows, metadata=meta, size=size)


class _Prefixed(io.RawIOBase):
    """A stream that hands out `head` (bytes already read) before the rest of `raw`."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self.head = head
        self.raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.raw.read(len(b))
        b[: len(data)] = data
        return len(data)


def _read_header(stream: IO[bytes], limit: int = 16 << 20) -> bytes:
    """The bytes of the header row (up to its newline, quoted newlines included)."""
    head = b""
    while len(head) < limit:
        chunk = stream.read(1 << 16)
        if not chunk:
            break
        head += chunk
        end = 0
        while (nl := head.find(b"\n", end)) >= 0:
            end = nl + 1
            if head[:end].count(b'"') % 2 == 0:
                return head
    return head


def _header_names(path: Path, head: bytes, kind: str, encoding: str) -> list[str]:
    """The column names of a CSV/TSV header, parsed as pyarrow parses the whole file."""
    first = head
    end = 0
    while (nl := head.find(b"\n", end)) >= 0:
        end = nl + 1
        if head[:end].count(b'"') % 2 == 0:
            first = head[:end]
            break
    try:
        reader = pacsv.open_csv(
            io.BytesIO(first),
            read_options=pacsv.ReadOptions(encoding=encoding, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter="\t" if kind == "tsv" else ",",
                                             newlines_in_values=True))
        return list(reader.schema.names)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise _csv_error(path, exc, kind) from None


def _csv_batches(path: Path, stream: IO[bytes], kind: str, batch_rows: int,
                 encoding: str) -> Iterator[pa.RecordBatch]:
    bad: list[tuple[int | None, str, str]] = []

    def on_invalid(row: Any) -> str:
        # Rows with the wrong number of fields (e.g. broken quoting) become quarantine rows.
        bad.append((row.number, row.text,
                    f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    # Every column is read as text, named from the header first: type inference would drop
    # the leading zeros of barcodes and turn "007" into 7, and a column inferred as numbers
    # from the first block would fail the whole file on one bad value in a later block. The
    # ingest validates and converts, so one bad value is one quarantined row.
    try:
        head = _read_header(stream)
    except (OSError, EOFError) as exc:
        raise _damaged(path, exc) from None
    names = _header_names(path, head, kind, encoding)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError("duplicate column names in the header", file=str(path), value=dup,
                         expected="unique column names")
    parse = pacsv.ParseOptions(delimiter="\t" if kind == "tsv" else ",",
                               newlines_in_values=True, invalid_row_handler=on_invalid)
    read = pacsv.ReadOptions(block_size=16 << 20, encoding=encoding, use_threads=False)
    try:
        reader = pacsv.open_csv(_Prefixed(head, stream), read_options=read,
                                parse_options=parse,
                                convert_options=pacsv.ConvertOptions(
                                    column_types={n: pa.binary() for n in names},
                                    strings_can_be_null=True,
                                    null_values=[""], quoted_strings_can_be_null=False,
                                    auto_dict_encode=False))
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise _csv_error(path, exc, kind) from None
    except (OSError, EOFError) as exc:
        raise _damaged(path, exc) from None
    schema = pa.schema([(n, pa.string()) for n in names])
    start = 1
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowException, UnicodeDecodeError) as exc:
            raise _csv_error(path, exc, kind, start) from None
        except (OSError, EOFError) as exc:
            raise _damaged(path, exc) from None
        # Row numbers count the skipped invalid rows too, so they match the file.
        total = batch.num_rows + len(bad)
        numbers = np.arange(start, start + total, dtype=np.int64)
        if bad:
            skipped = np.array([n - 1 for n, _, _ in bad if n is not None], dtype=np.int64)
            numbers = numbers[~np.isin(numbers, skipped)]
        start += total
        batch = pa.RecordBatch.from_arrays(
            [_utf8(path, name, col, numbers) for name, col in zip(names, batch.columns,
                                                                   strict=True)],
            schema=schema)
        batch = batch.append_column("_row", pa.array(numbers[: batch.num_rows]))
        # A block holds as many rows as fit in 16 MB: hand them on batch_rows at a time.
        for offset in range(0, batch.num_rows, batch_rows):
            yield batch.slice(offset, batch_rows)
        if bad:
            yield _bad_rows(schema, bad)
            bad.clear()
    if bad:
        yield _bad_rows(schema, bad)


def _utf8(path: Path, name: str, column: pa.Array, numbers: np.ndarray) -> pa.Array:
    """A column of raw bytes as text; bytes that are not UTF-8 refuse the file, naming the row."""
    try:
        return column.cast(pa.string())
    except pa.ArrowInvalid:
        pass
    for i, value in enumerate(column.to_pylist()):  # only on the way to an error
        try:
            if value is not None:
                value.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("text is not valid UTF-8", file=str(path), row=int(numbers[i]),
                             field=name, value=value[:40].decode("utf-8", "replace"),
                             expected="UTF-8 text (or pass --encoding, e.g. --encoding latin-1)"
                             ) from None
    raise InputError("text is not valid UTF-8", file=str(path), field=name,
                     expected="UTF-8 text (or pass --encoding, e.g. --encoding latin-1)")


def _bad_rows(schema: pa.Schema, bad: list[tuple[int | None, str, str]]) -> pa.RecordBatch:
    """Unparseable rows as a batch with only `_row` and `_invalid` (the reason) set."""
    cols: list[pa.Array] = [pa.nulls(len(bad), pa.string()) for _ in schema]
    nums = [(n - 1 if n is not None else None) for n, _, _ in bad]  # 1-based data rows
    names = [*schema.names, "_row", "_invalid", "_raw"]
    arrays = [*cols, pa.array(nums, pa.int64()), pa.array([r for _, _, r in bad]),
              pa.array([t[:200] for _, t, _ in bad])]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _csv_error(path: Path, exc: BaseException, kind: str, row: int | None = None
               ) -> InputError:
    text = _first_line(exc)
    if "UTF8" in text or "UTF-8" in text or isinstance(exc, UnicodeDecodeError):
        return InputError("text is not valid UTF-8", file=str(path), row=row,
                          expected="UTF-8 text (or pass --encoding, e.g. --encoding latin-1)")
    if "Empty CSV file" in text:
        return InputError("empty file", file=str(path), expected="a header row")
    if "straddling" in text or "block size" in text:
        return InputError("a field is larger than 16 MB", file=str(path), row=row,
                          expected="fields under 16 MB")
    return InputError(f"not readable as {kind.upper()} ({text})", file=str(path), row=row,
                      expected=f"{kind.upper()} with a header row")


def _jsonl_batches(path: Path, stream: IO[bytes], batch_rows: int,
                   encoding: str) -> Iterator[pa.RecordBatch]:
    """Lines as Arrow strings with their line numbers; blank lines are skipped (vectorised)."""
    import pyarrow.compute as pc

    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="\n")
    row = 0
    while True:
        try:
            chunk = text.readlines(min(64 << 20, max(1, batch_rows) * 256))
        except UnicodeDecodeError:
            raise InputError("text is not valid UTF-8", file=str(path), row=row + 1,
                             expected="UTF-8 JSON Lines (or pass --encoding)") from None
        except (OSError, EOFError) as exc:
            raise _damaged(path, exc) from None
        if not chunk:
            break
        lines = pc.utf8_rtrim(pa.array(chunk, pa.string()), characters="\r\n")
        numbers = pa.array(np.arange(row + 1, row + 1 + len(chunk), dtype=np.int64))
        row += len(chunk)
        keep = pc.not_equal(pc.utf8_trim_whitespace(lines), "")
        lines, numbers = pc.filter(lines, keep), pc.filter(numbers, keep)
        for start in range(0, len(lines), batch_rows):
            yield pa.RecordBatch.from_arrays(
                [lines.slice(start, batch_rows), numbers.slice(start, batch_rows)],
                names=["_line", "_row"])


def _open_sqlite(path: Path, batch_rows: int, table: str | None, size: int,
                 query: str | None = None) -> Opened:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a readable SQLite database ({exc})", file=str(path)) from None
    if query is not None:
        return _sqlite_query(con, path, batch_rows, query, size)
    if table is None:
        for guess in ("tracks", "items", "recordings"):
            if guess in tables:
                table = guess
                break
        else:
            if len(tables) != 1:
                raise InputError("which table? the database has " + str(len(tables)),
                                 file=str(path), value=tables, expected="--table NAME")
            table = tables[0]
    if table not in tables:
        raise InputError("no such table", file=str(path), value=table,
                         expected="one of " + ", ".join(tables))
    quoted = '"' + table.replace('"', '""') + '"'
    opened = _sqlite_query(con, path, batch_rows, f"SELECT *, rowid AS _row FROM {quoted}", size)
    opened.metadata["table"] = table
    return opened


def _sqlite_query(con: sqlite3.Connection, path: Path, batch_rows: int, query: str,
                  size: int) -> Opened:
    try:
        total = con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
        cur = con.execute(query)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"cannot read the SQLite data ({exc})", file=str(path)) from None
    names = [d[0] for d in cur.description]
    if "_row" not in names:
        raise InputError("the SQLite query has no _row column", file=str(path),
                         expected="a query selecting rowid AS _row")

    def gen() -> Iterator[pa.RecordBatch]:
        try:
            while True:
                rows = cur.fetchmany(batch_rows)
                if not rows:
                    break
                cols = [_column(list(c)) for c in zip(*rows, strict=True)]
                yield pa.RecordBatch.from_arrays(cols, names=names)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"corrupt SQLite data ({exc})", file=str(path)) from None
        finally:
            con.close()

    return Opened(path=path, fmt="sqlite", batches=gen(), total_rows=total, size=size)


def _column(values: list[Any]) -> pa.Array:
    """A SQLite column as Arrow; mixed types (SQLite allows them) fall back to text."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        arr = pa.array([None if v is None else str(v) for v in values], pa.string())
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    if pa.types.is_binary(arr.type):
        arr = pa.array([None if v is None else bytes(v).decode("utf-8", "replace")
                        for v in values], pa.string())
    return arr


def _damaged(path: Path, exc: BaseException) -> InputError:
    """A compressed file that cannot be read to its end (truncated or corrupt)."""
    return InputError(f"compressed stream is damaged ({_first_line(exc)})",
                      file=str(path), expected="a complete .gz or .zst file")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
