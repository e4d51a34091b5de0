"""Ingest: readers -> Arrow batches -> validated in DuckDB -> catalog tables (or quarantine).

One source file is one transaction: killed at any moment, the catalog keeps nothing of it and
the next run starts that file again; a file whose bytes were already ingested is skipped, so
running the same ingest twice changes nothing. Rows are validated as sets in SQL; a refused row
goes to the quarantine table with its file, row, field, value and reason, and every file's
summary holds rows read = accepted + quarantined.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from soundkeep import db
from soundkeep.archive import Archive, rights_sql
from soundkeep.catalog import identifiers as ids
from soundkeep.catalog.fields import ENTITIES, FEATURE_NAMES, RIGHTS_CC_PATTERN, RIGHTS_FIXED, Field
from soundkeep.catalog.mapping import Mapping, load_mapping, normalize_entity
from soundkeep.catalog.readers import Opened, ParquetRange, open_source
from soundkeep.db import literal, now, one, scalar
from soundkeep.errors import InputError, SoundkeepError

ENTITY_ORDER = ("artists", "releases", "tracks")
Progress = Callable[[str, int, int | None], None]  # (file, done, total) in rows or bytes
AfterBatch = Callable[[duckdb.DuckDBPyConnection, "pa.RecordBatch | ParquetRange", int], None]


def _is_text(arrow: pa.DataType | None) -> bool:
    """Whether a source column holds text (or is not typed at all, as in CSV)."""
    return arrow is None or pa.types.is_string(arrow) or pa.types.is_large_string(arrow)


@dataclass
class IngestResult:
    """What happened to one source file."""

    file: str
    format: str = ""
    entity: str = ""
    source: str = ""
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    skipped: bool = False
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """Plain data for --json."""
        return asdict(self)


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files to ingest: directories expand to their files, artists before releases before tracks."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            files = [f for f in sorted(p.iterdir()) if f.is_file() and not f.name.startswith(".")
                     and not f.name.endswith(".tmp")]
            files.sort(key=lambda f: (_entity_rank(f), f.name))
            out.extend(files)
        elif p.exists():
            out.append(p)
        else:
            raise InputError("no such file or directory", file=str(p))
    return out


def _entity_rank(path: Path) -> int:
    stem = path.name.split(".")[0].lower()
    for i, name in enumerate(ENTITY_ORDER):
        if stem.startswith(name) or stem.startswith(name[:-1]):
            return i
    return len(ENTITY_ORDER)


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read once in large blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def ingest_paths(arch: Archive, paths: Iterable[Path], *, fmt: str | None = None,
                 mapping_path: Path | None = None, source: str | None = None,
                 entity: str | None = None, table: str | None = None,
                 encoding: str = "utf-8", on_progress: Progress | None = None
                 ) -> list[IngestResult]:
    """Ingest files and directories; a refused file is reported in its result, not raised."""
    mapping = load_mapping(mapping_path) if mapping_path else Mapping()
    if entity:
        mapping.entity = normalize_entity(entity, "--entity")
    results = []
    for path in expand(paths):
        try:
            results.append(ingest_file(arch, path, fmt=fmt, mapping=mapping, source=source,
                                       table=table, encoding=encoding, on_progress=on_progress))
        except InputError as exc:
            # Recorded by absolute path, as accepted files and quarantined rows are.
            _record_refusal(arch.con, path.resolve(), exc)
            results.append(IngestResult(file=str(path.resolve()), error=exc.one_line()))
    return results


def _record_refusal(con: duckdb.DuckDBPyConnection, path: Path, exc: InputError) -> None:
    """A refused file is recorded once (per reason) in quarantine; the catalog is unchanged."""
    reason = exc.message + (f"; expected {exc.expected}" if exc.expected else "")
    con.execute(
        "INSERT INTO quarantine SELECT 'ingest', ?, ?, NULL, NULL, ?, ? "
        "WHERE NOT EXISTS (SELECT 1 FROM quarantine WHERE stage = 'ingest' AND source_file = ? "
        "AND row_number IS NOT DISTINCT FROM ? AND field IS NULL AND reason = ?)",
        [str(path), exc.row, reason, now(), str(path), exc.row, reason])


def ingest_file(arch: Archive, path: Path, *, fmt: str | None = None,
                mapping: Mapping | None = None, source: str | None = None,
                table: str | None = None, encoding: str = "utf-8",
                on_progress: Progress | None = None,
                after_batch: AfterBatch | None = None, opened: Opened | None = None,
                digest: str | None = None) -> IngestResult:
    """Ingest one file in one transaction; raises InputError when the file is refused whole.

    `after_batch(con, batch, source_id)` runs in the same transaction after each batch, with
    the batch's accepted rows in the temp table `v` (column `eid` is the soundkeep id): an
    importer adds what its format knows beyond the generic fields there. An importer that
    builds its own batches passes them as `opened`, with a `digest` that names their content.
    """
    t0 = time.perf_counter()
    mapping = mapping or Mapping()
    con = arch.con
    batch_rows = arch.settings.typed("ingest.batch_rows", int, 1)
    from_file = opened is None
    if opened is None:
        opened = open_source(path, fmt, batch_rows=batch_rows, encoding=encoding,
                             table=table or mapping.table, query=mapping.query)
    entity = mapping.entity or _entity_of(opened)
    namespace = source or mapping.source or opened.metadata.get("soundkeep.source") or \
        path.name.split(".")[0]
    digest = digest or sha256_file(path)
    res = IngestResult(file=str(path.resolve()), format=opened.fmt, entity=entity,
                       source=namespace)
    if already_ingested(con, res, digest):
        return res

    # Only an earlier file of the same source and entity can hold rows with these ids.
    seen_before = one(con, "SELECT count(*) FROM sources WHERE source_name = ? AND entity = ?",
                      [namespace, entity])
    started = now()
    source_id = next_source_id(con)
    ctx = _Context(arch, res, mapping, namespace, source_id)
    try:
        with db.transaction(con):
            ctx.source_seen = bool(seen_before and seen_before[0])
            for i, batch in enumerate(opened.batches):
                ctx.first_batch = i == 0
                ctx.load(batch)
                if after_batch is not None and batch.num_rows:
                    after_batch(con, batch, source_id)
                if on_progress:
                    if opened.position is not None:
                        on_progress(str(path), opened.position(), opened.size)
                    else:
                        on_progress(str(path), res.rows_read, opened.total_rows)
            if from_file and res.rows_read == 0:
                # An empty export is almost always a mistake (a failed dump, the wrong file).
                raise InputError("no data rows", file=str(path),
                                 expected="at least one data row")
            record_source(con, source_id, res, digest, opened.size, started)
    finally:
        ctx.release()
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def already_ingested(con: duckdb.DuckDBPyConnection, res: IngestResult, digest: str) -> bool:
    """Whether these bytes were ingested as this entity of this source; if so, the result
    takes that run's counts and is marked skipped."""
    done = one(con, "SELECT rows_read, rows_accepted, rows_quarantined FROM sources "
                    "WHERE sha256 = ? AND entity = ? AND source_name = ?",
               [digest, res.entity, res.source])
    if done is None:
        return False
    res.rows_read, res.rows_accepted, res.rows_quarantined = (int(x) for x in done)
    res.skipped = True
    return True


def next_source_id(con: duckdb.DuckDBPyConnection) -> int:
    """The id the next ingested file gets (one writer at a time, so max + 1 is safe)."""
    return int(scalar(con, "SELECT coalesce(max(source_id), 0) + 1 FROM sources"))


def record_source(con: duckdb.DuckDBPyConnection, source_id: int, res: IngestResult,
                  digest: str, size: int, started: datetime) -> None:
    """Record a finished file in `sources` (inside its transaction: the mark that it is done)."""
    con.execute("INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [source_id, res.file, digest, size, res.format, res.entity, res.source,
                 res.rows_read, res.rows_accepted, res.rows_quarantined, started, now()])


def _entity_of(opened: Opened) -> str:
    meta = opened.metadata.get("soundkeep.entity")
    if meta:
        return normalize_entity(meta, "soundkeep.entity")
    stem = opened.path.name.split(".")[0].lower()
    for name in ENTITY_ORDER:
        if stem.startswith(name[:-1]):
            return name
    if opened.metadata.get("table"):
        from soundkeep.catalog.fields import ENTITY_ALIASES

        return ENTITY_ALIASES.get(opened.metadata["table"].lower(), "tracks")
    return "tracks"


def json_path(path: str) -> str:
    """A mapping path ('release-group.primary-type', 'artists[*].name') as a DuckDB JSON path."""
    parts = []
    for part in path.split("."):
        name, bracket, idx = part.partition("[")
        parts.append(_q(name) + (bracket + idx if bracket else ""))
    return "$." + ".".join(parts)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Context:
    """Turns one file's batches into catalog rows: builds the SQL once, runs it per batch."""

    def __init__(self, arch: Archive, res: IngestResult, mapping: Mapping, namespace: str,
                 source_id: int) -> None:
        self.arch = arch
        self.con = arch.con
        self.res = res
        self.mapping = mapping
        self.ns = literal(namespace)
        self.file = literal(res.file)
        self.source_id = source_id
        self._staged: dict[str, bool] = {}
        self.fields = ENTITIES[res.entity]
        self.max_chars = arch.settings.typed("ingest.max_field_chars", int, 1)
        self.sep = literal(mapping.list_separator)
        self.source_seen = False  # an earlier file of this source may hold the same ids
        self.first_batch = True
        self.replace = False  # this batch replaces rows already in the catalog
        self.validated_sql: str | None = None
        self.present: set[str] = set()  # catalog fields the source supplies
        self.textual = True  # a text format (values trimmed) rather than typed columns
        self.q_field = self.q_reason = "NULL"
        self.columns: set[str] = set()  # the source's own columns

    # -- building the validation query (once per file, from the first batch's schema) --------

    def _raw_expr(self, f: Field, schema: pa.Schema) -> tuple[str | None, pa.DataType | None]:
        if "_line" in schema.names:  # JSON Lines: extract with JSON paths
            path = self.mapping.fields.get(f.name)
            if path:
                jp = literal(json_path(path))
                return f"json_extract_string(_j, {jp})", (
                    pa.list_(pa.string()) if "[*]" in path else None)
            alts = [f"json_extract_string(_j, {literal('$.' + _q(n))})" for n in f.names]
            return "coalesce(" + ", ".join(alts) + ")", None
        lower = {n.lower(): n for n in schema.names if not n.startswith("_")}
        path = self.mapping.fields.get(f.name)
        if path:
            if path in schema.names:
                return _q(path), schema.field(path).type
            head, *rest = path.split(".")
            if head.split("[")[0] not in schema.names:
                raise SoundkeepError("mapped column not in the file", file=self.res.file,
                                     field=f"fields.{f.name}", value=path,
                                     expected="one of " + ", ".join(
                                         n for n in schema.names if not n.startswith("_")))
            parts = []
            for part in [head, *rest]:
                name, _, idx = part.partition("[")
                parts.append(_q(name) + (f"[{int(idx.rstrip(']')) + 1}]" if idx else ""))
            return ".".join(parts), None
        for n in f.names:
            if n.lower() in lower:
                col = lower[n.lower()]
                return _q(col), schema.field(col).type
        return None, None

    def _typed(self, f: Field, raw: str, arrow: pa.DataType | None) -> str:
        is_text = _is_text(arrow)
        s = f"CAST({raw} AS VARCHAR)"
        if f.kind in ("key", "text"):
            if not is_text:
                return s
            # Text formats carry stray spaces; a typed (Parquet) column keeps its value as is.
            return f"nullif(trim({s}), '')" if self.textual else f"nullif({s}, '')"
        if f.kind == "int":
            return f"TRY_CAST(trim({s}) AS BIGINT)" if is_text else f"TRY_CAST({raw} AS BIGINT)"
        if f.kind == "float":
            v = f"TRY_CAST(trim({s}) AS DOUBLE)" if is_text else f"TRY_CAST({raw} AS DOUBLE)"
            return f"CASE WHEN isfinite({v}) THEN {v} END"
        if f.kind == "bool":
            if arrow is not None and pa.types.is_boolean(arrow):
                return raw
            low = f"lower(trim({s}))"
            return (f"CASE WHEN {low} IN ('true','t','1','yes','y') THEN TRUE "
                    f"WHEN {low} IN ('false','f','0','no','n') THEN FALSE END")
        if f.kind == "list":
            if arrow is not None and (pa.types.is_list(arrow) or pa.types.is_large_list(arrow)):
                if not pa.types.is_string(arrow.value_type):  # e.g. integer ids: nothing to trim
                    return f"CAST({raw} AS VARCHAR[])"
                return (f"list_filter(list_transform(CAST({raw} AS VARCHAR[]), lambda x: trim(x)),"
                        f" lambda x: x IS NOT NULL AND x <> '')")
            split = f"string_split({s}, {self.sep})"
            if arrow is None and "_line" in self.columns:
                # A JSON value may be an array or a separated string.
                split = (f"CASE WHEN starts_with(ltrim({s}), '[') "
                         f"THEN CAST(json_extract_string({s}, '$[*]') AS VARCHAR[]) "
                         f"ELSE string_split({s}, {self.sep}) END")
            return (f"list_filter(list_transform({split}, lambda x: trim(x)), "
                    f"lambda x: x IS NOT NULL AND x <> '')")
        if f.kind == "isrc":
            return f"nullif({ids.sql_normalize_isrc(s)}, '')"
        if f.kind == "upc":
            return f"nullif({ids.sql_normalize_upc(s)}, '')"
        if f.kind == "date":
            return f"nullif(trim({s}), '')"
        if f.kind == "rights":
            return f"coalesce(nullif(trim({s}), ''), 'unknown')"
        raise AssertionError(f.kind)

    def _checks(self, f: Field, raw: str, numeric_list: bool = False,
                text: bool = True) -> list[tuple[str, str]]:
        """(condition, reason) pairs for one field; the first that holds quarantines the row."""
        n = f.name
        out: list[tuple[str, str]] = []
        if f.required:
            out.append((f"{n} IS NULL", "missing; expected a non-empty value"))
        if f.kind in ("key", "text"):
            out.append((f"length({n}) > {self.max_chars}",
                        f"longer than {self.max_chars} characters"))
            if text:  # only text can hold a NUL (numbers cast to text cannot)
                out.append((f"contains({n}, chr(0))", "contains a NUL character"))
        elif f.kind in ("int", "float"):
            what = "a whole number" if f.kind == "int" else "a finite number"
            out.append((f"{raw} IS NOT NULL AND {n} IS NULL", f"not {what}"))
            rng = []
            if f.lo is not None:
                rng.append(f"{n} < {f.lo}")
            if f.hi is not None:
                rng.append(f"{n} > {f.hi}")
            if rng:
                fmt = "{:.0f}" if f.kind == "int" else "{:g}"
                lo = "" if f.lo is None else fmt.format(f.lo)
                hi = "" if f.hi is None else fmt.format(f.hi)
                desc = f"between {lo} and {hi}" if lo and hi else (f">= {lo}" if lo else f"<= {hi}")
                out.append((" OR ".join(rng), f"out of range; expected {what} {desc}"))
        elif f.kind == "bool":
            out.append((f"{raw} IS NOT NULL AND {n} IS NULL", "not a boolean; expected true/false"))
        elif f.kind == "list" and not numeric_list:
            out.append((f"list_max(list_transform({n}, lambda x: length(x))) > {self.max_chars}",
                        f"an element is longer than {self.max_chars} characters"))
        elif f.kind == "isrc":
            out.append((f"{n} IS NOT NULL AND NOT {ids.sql_is_valid_isrc(n)}",
                        "not a valid ISRC; expected CC-XXX-YY-NNNNN (ISO 3901)"))
        elif f.kind == "upc":
            # {n}__num is the barcode as a number, computed once (see _build).
            out.append((f"{n} IS NOT NULL AND NOT {ids.sql_is_valid_upc(n, n + '__num')}",
                        "not a valid barcode; expected 8, 12, 13 or 14 digits (EAN-8, UPC-A, "
                        "EAN-13, GTIN-14) with a right check digit"))
        elif f.kind == "date":
            out.append((f"{n} IS NOT NULL AND {_date_sql(n)} IS NULL",
                        "not a date; expected YYYY, YYYY-MM or YYYY-MM-DD"))
        elif f.kind == "rights":
            fixed = ", ".join(literal(r) for r in RIGHTS_FIXED)
            out.append((f"NOT ({n} IN ({fixed}) OR regexp_full_match({n}, "
                        f"{literal(RIGHTS_CC_PATTERN)}))",
                        "unknown rights status; expected public_domain, a Creative Commons id "
                        "like CC-BY-4.0, licensed_by_rightsholder, all_rights_reserved or "
                        "unknown"))
        return out

    def _build(self, schema: pa.Schema, textual: bool = True) -> str:
        self.columns = set(schema.names)
        self.textual = textual
        self.present = set()
        raw_cols = ["_row"]
        typed_cols = ["_row"]
        checks: list[tuple[str, str, str, str]] = []  # (cond, field, value, reason)
        raw_names: list[str] = []
        if "_invalid" in schema.names:
            raw_cols += ["_invalid", "_raw"]
            typed_cols += ["_invalid", "_raw"]
            checks.append(("_invalid IS NOT NULL", "", "_raw", "_invalid"))
        if "_line" in schema.names:
            # Fields come from _j: the line when it is a JSON object, else NULL (the JSON
            # functions raise on malformed text; such a line is quarantined by the checks).
            raw_cols += ["_line", "CASE WHEN json_valid(_line) AND json_type(_line) = 'OBJECT' "
                                  "THEN _line END AS _j"]
            typed_cols += ["_line", "_j"]
            checks.append(("NOT json_valid(_line)", "", "_line", "'not valid JSON'"))
            checks.append(("json_type(_line) <> 'OBJECT'", "", "_line",
                           "'expected a JSON object on each line'"))
        for f in self.fields:
            raw, arrow = self._raw_expr(f, schema)
            if raw is None:
                if f.kind == "rights":
                    typed_cols.append(f"'unknown' AS {f.name}")
                elif f.kind == "list":
                    typed_cols.append(f"CAST([] AS VARCHAR[]) AS {f.name}")
                else:
                    typed_cols.append(f"NULL AS {f.name}")
                continue
            self.present.add(f.name)
            rname = f"r__{f.name}"
            raw_names.append(rname)
            raw_cols.append(f"{raw} AS {rname}")
            typed_cols += [rname, f"{self._typed(f, rname, arrow)} AS {f.name}"]
            numeric_list = arrow is not None and pa.types.is_list(arrow) and \
                not pa.types.is_string(arrow.value_type)
            text = _is_text(arrow)
            for cond, reason in self._checks(f, rname, numeric_list, text):
                checks.append((cond, literal(f.name), f"CAST({rname} AS VARCHAR)", literal(reason)))
        for f in self.fields:  # required fields absent from the file entirely
            if f.required and f.name not in self.present:
                raise InputError(f"no column for the required field {f.name!r}",
                                 file=self.res.file,
                                 expected="a column named " + " or ".join(f.names)
                                 + " (or a mapping file)")
        idx = "CASE " + " ".join(f"WHEN {c} THEN {i + 1}" for i, (c, *_r) in
                                 enumerate(checks)) + " END" if checks else "NULL"
        self.q_field = ("CASE q_idx " + " ".join(f"WHEN {i + 1} THEN {c[1] or 'NULL'}" for i, c in
                                                 enumerate(checks)) + " END") if checks else "NULL"
        self.q_reason = ("CASE q_idx " + " ".join(f"WHEN {i + 1} THEN {c[3]}" for i, c in
                                                  enumerate(checks)) + " END") if checks else "NULL"
        values = ("CASE q_idx " + " ".join(f"WHEN {i + 1} THEN {c[2]}" for i, c in
                                           enumerate(checks)) + " END") if checks else "NULL"
        kind, content = _ID_OF[self.res.entity]
        # Helper columns computed once for the checks, dropped from v.
        upcs = [f.name for f in self.fields if f.kind == "upc" and f.name in self.present]
        helpers = "".join(f", TRY_CAST({u} AS UBIGINT) AS {u}__num" for u in upcs)
        dropped = ["_row", *raw_names, *(["_j"] if "_line" in self.columns else []),
                   *(f"{u}__num" for u in upcs)]
        # The source's own id, or (CASE is lazy) a hash of the row's content when it has none.
        skey = f"CASE WHEN id IS NOT NULL THEN id ELSE md5({content}) END"
        rel = (f"CASE WHEN release_id IS NOT NULL THEN sk_id('release', {self.ns}, release_id) END"
               if "release_id" in self.present else "NULL::BIGINT")
        return f"""
            WITH t AS (SELECT {", ".join(raw_cols)} FROM raw),
                 s0 AS (SELECT {", ".join(typed_cols)} FROM t),
                 s AS (SELECT *{helpers} FROM s0),
                 c AS (SELECT *, {idx} AS q_idx FROM s),
                 k AS (SELECT *, {skey} AS skey FROM c)
            SELECT * EXCLUDE ({", ".join(dropped)}), _row,
                   sk_id('{kind}', {self.ns}, skey) AS eid,
                   {rel} AS rel_id,
                   left({values}, 200) AS q_value
            FROM k"""

    # -- per batch ------------------------------------------------------------------------

    def load(self, batch: pa.RecordBatch | ParquetRange) -> None:
        """Validate one batch, quarantine its bad rows, write its good rows."""
        con = self.con
        if batch.num_rows == 0:
            return
        if self.validated_sql is None or (
                "_invalid" in batch.schema.names) != ("_invalid" in self.columns):
            self.validated_sql = self._build(batch.schema,
                                             textual=not isinstance(batch, ParquetRange))
        if isinstance(batch, ParquetRange):
            try:
                self.stage("v", self.validated_sql.replace("FROM raw", "FROM " + batch.sql()))
            except _OUR_ERRORS:
                raise
            except duckdb.Error as exc:
                # What is left is the reader's: damaged pages fail with messages that need not
                # name Parquet ("Out of buffer", "Payload value bigger than allowed").
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                raise InputError(f"corrupt Parquet data in rows {batch.start + 1}-{batch.stop}"
                                 f" ({first})", file=self.res.file,
                                 expected="a readable Parquet file") from None
        else:
            con.register("raw", batch)
            self.stage("v", self.validated_sql)
            con.unregister("raw")
        counts = one(con, """SELECT count(*), count(q_idx),
                                    count(DISTINCT eid) FILTER (WHERE q_idx IS NULL) FROM v""")
        n_read, n_bad, n_ids = counts or (0, 0, 0)
        if n_bad:
            con.execute(
                f"INSERT INTO quarantine SELECT 'ingest', {self.file}, _row, {self.q_field}, "
                f"q_value, {self.q_reason}, now() FROM v WHERE q_idx IS NOT NULL")
        if n_bad or n_ids < n_read - n_bad:
            # Keep the accepted rows; a later row of the batch wins over an earlier one with
            # the same id, as later batches win over earlier ones. (Most batches have neither
            # refused rows nor repeated ids, and skip this.)
            con.execute("""DELETE FROM v WHERE q_idx IS NOT NULL OR _row NOT IN (
                             SELECT max(_row) FROM v WHERE q_idx IS NULL GROUP BY eid)""")
        getattr(self, f"_load_{self.res.entity}")()
        self.res.rows_read += int(n_read)
        self.res.rows_quarantined += int(n_bad)
        self.res.rows_accepted += int(n_read) - int(n_bad)

    def _prov(self) -> str:
        return f"{self.source_id}, _row, skey"

    def stage(self, name: str, sql: str) -> None:
        """Materialise a query as the temp table `name` (replacing it).

        Inside the file's transaction DuckDB keeps every replaced version until commit (it
        spills them to the temp directory, so memory stays bounded): temporary disk grows with
        the file, which is why very large inputs come as part files (synth writes parts of
        16 M tracks), each its own transaction."""
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        self._staged[name] = True

    def unstage(self, name: str) -> None:
        """Drop a staged table."""
        if self._staged.pop(name, None) is not None:
            self.con.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def release(self) -> None:
        """Drop every staged table (end of file)."""
        for name in list(self._staged):
            self.unstage(name)

    def _resolve_artists(self) -> None:
        """names(_row, pos, artist_id): source ids, or artists found or created by name."""
        con = self.con
        by_ids, by_name = "artist_ids" in self.present, "artists" in self.present
        ids_sql = (f"SELECT _row, generate_subscripts(artist_ids, 1) AS pos, "
                   f"sk_id('artist', {self.ns}, unnest(artist_ids)) AS artist_id, "
                   f"NULL AS name FROM v")
        if by_ids and not by_name:
            # Credits straight from v (see _credits); the table is needed only to name albums.
            if "album" in self.present:
                self.stage("names", ids_sql)
            return
        if not by_name:
            self.stage("names", "SELECT NULL::BIGINT AS _row, NULL::BIGINT AS pos, "
                                "NULL::BIGINT AS artist_id, NULL::VARCHAR AS name WHERE FALSE")
            return
        # Both may be present (JSON Lines offer every field): a row's ids win over its names.
        no_ids = "WHERE coalesce(len(artist_ids), 0) = 0" if by_ids else ""
        self.stage("names", f"""
            WITH n AS (SELECT _row, generate_subscripts(artists, 1) AS pos, unnest(artists) AS name
                       FROM v {no_ids}),
                 known AS (SELECT lower(a.name) AS lname,
                                  arg_max(a.artist_id, coalesce(a.popularity, -1)) AS artist_id
                           FROM artists a
                           WHERE lower(a.name) IN (SELECT DISTINCT lower(name) FROM n)
                           GROUP BY 1)
            SELECT n._row, n.pos, coalesce(k.artist_id, sk_id('artist', 'name', lower(n.name)))
                   AS artist_id, n.name
            FROM n LEFT JOIN known k ON lower(n.name) = k.lname""")
        con.execute(f"""INSERT INTO artists (artist_id, name, source_id, source_row, source_key)
            SELECT artist_id, arg_min(name, _row), {self.source_id}, min(_row),
                   lower(arg_min(name, _row))
            FROM names WHERE artist_id NOT IN (SELECT artist_id FROM artists)
            GROUP BY artist_id""")
        if by_ids:
            con.execute(f"INSERT INTO names {ids_sql} WHERE len(artist_ids) > 0")

    def _credits(self) -> str:
        """SELECT (eid, artist_id, pos) for this batch's ordered artist credits."""
        if "artist_ids" in self.present and "artists" not in self.present:
            return (f"SELECT eid, sk_id('artist', {self.ns}, unnest(artist_ids)) AS artist_id, "
                    f"generate_subscripts(artist_ids, 1) AS pos FROM v")
        return "SELECT v.eid, n.artist_id, n.pos FROM names n JOIN v USING (_row)"

    def _check_replace(self, table: str, column: str) -> None:
        """Whether this batch's ids are already in the catalog (then they replace those rows).

        Only this source's earlier files, or an earlier batch of this file, can hold them; the
        check reads just those rows (row groups of other sources are skipped by source_id)."""
        if self.first_batch and not self.source_seen:
            self.replace = False
            return
        earlier = (f"(SELECT source_id FROM sources WHERE source_name = {self.ns} "
                   f"AND entity = '{self.res.entity}')")
        self.replace = bool(scalar(self.con, f"""SELECT count(*) FROM {table}
            WHERE (source_id = {self.source_id} OR source_id IN {earlier})
              AND {column} IN (SELECT eid FROM v)"""))

    def _delete_existing(self, table: str, column: str, ids_sql: str) -> None:
        if self.replace:
            self.con.execute(f"DELETE FROM {table} WHERE {column} IN ({ids_sql})")

    def _load_tracks(self) -> None:
        con = self.con
        self._resolve_artists()
        self._resolve_release()
        self._check_replace("tracks", "track_id")
        for table in ("tracks", "track_artists", "audio_features"):
            self._delete_existing(table, "track_id", "SELECT eid FROM v")
        rights = rights_sql(self.arch.settings, "rights_status")
        con.execute(f"""INSERT INTO tracks (track_id, title, release_id, disc_number,
                track_number, duration_ms, explicit, isrc, popularity, listens, rights_status,
                distributable, source_id, source_row, source_key)
            SELECT eid, title, rel_id, disc_number, track_number, duration_ms, explicit,
                   isrc, popularity, listens, rights_status, {rights}, {self._prov()}
            FROM v""")
        con.execute(f"INSERT INTO track_artists SELECT *, NULL FROM ({self._credits()})")
        feats = [f for f in FEATURE_NAMES if f in self.present]
        if feats:
            cols = ", ".join(f if f in feats else f"NULL AS {f}" for f in FEATURE_NAMES)
            anyf = " OR ".join(f"{f} IS NOT NULL" for f in feats)
            con.execute(f"INSERT INTO audio_features SELECT eid, {cols} FROM v WHERE {anyf}")

    def _resolve_release(self) -> None:
        """rel_id on v: the source's release id, or a release found or created by album name."""
        con = self.con
        if "album" not in self.present:
            return
        # Albums found by (title, first artist) among known releases, else created.
        self.stage("albums", """
            WITH a AS (SELECT v._row, v.album, lower(v.album) AS ltitle,
                              n.artist_id AS first_artist
                       FROM v LEFT JOIN names n ON n._row = v._row AND n.pos = 1
                       WHERE v.rel_id IS NULL AND v.album IS NOT NULL),
                 k AS (SELECT lower(r.title) AS ltitle, ra.artist_id AS first_artist,
                              min(r.release_id) AS release_id
                       FROM releases r LEFT JOIN release_artists ra
                            ON ra.release_id = r.release_id AND ra.position = 1
                       WHERE lower(r.title) IN (SELECT DISTINCT ltitle FROM a)
                       GROUP BY 1, 2)
            SELECT a.*, coalesce(k.release_id, sk_id('release', 'name', a.ltitle || '|'
                            || coalesce(CAST(a.first_artist AS VARCHAR), ''))) AS release_id
            FROM a LEFT JOIN k ON k.ltitle = a.ltitle
                               AND k.first_artist IS NOT DISTINCT FROM a.first_artist""")
        con.execute(f"""INSERT INTO releases (release_id, title, source_id, source_row,
                            source_key)
            SELECT release_id, arg_min(album, _row), {self.source_id}, min(_row),
                   arg_min(ltitle, _row)
            FROM albums WHERE release_id NOT IN (SELECT release_id FROM releases)
            GROUP BY release_id""")
        con.execute("""INSERT INTO release_artists
            SELECT release_id, any_value(first_artist), 1 FROM albums
            WHERE first_artist IS NOT NULL
              AND release_id NOT IN (SELECT release_id FROM release_artists)
            GROUP BY release_id""")
        con.execute("""UPDATE v SET rel_id = a.release_id FROM albums a
                       WHERE a._row = v._row AND a.release_id IS NOT NULL""")

    def _load_releases(self) -> None:
        con = self.con
        self._resolve_artists()
        self._check_replace("releases", "release_id")
        self._delete_existing("releases", "release_id", "SELECT eid FROM v")
        self._delete_existing("release_artists", "release_id", "SELECT eid FROM v")
        con.execute(f"""INSERT INTO releases
            SELECT eid, title, lower(release_type), upc, label, copyright_c, copyright_p,
                   {_date_sql("release_date")},
                   CASE length(release_date) WHEN 4 THEN 'year' WHEN 7 THEN 'month'
                        ELSE CASE WHEN release_date IS NOT NULL THEN 'day' END END,
                   total_tracks, popularity, {self._prov()}
            FROM v""")
        con.execute(f"INSERT INTO release_artists {self._credits()}")

    def _load_artists(self) -> None:
        con = self.con
        self._check_replace("artists", "artist_id")
        self._delete_existing("artists", "artist_id", "SELECT eid FROM v")
        self._delete_existing("artist_genres", "artist_id", "SELECT eid FROM v")
        con.execute(f"""INSERT INTO artists
            SELECT eid, name, followers, popularity, {self._prov()} FROM v""")
        con.execute("""INSERT INTO artist_genres
            SELECT eid, lower(unnest(genres)) FROM v""")


# DuckDB errors that are soundkeep's own (a query it built, or the machine), never the input's.
_OUR_ERRORS = (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException,
               duckdb.OutOfMemoryException, duckdb.InterruptException,
               duckdb.TransactionException)

# Per entity: the kind of its stable id, and the content that identifies a row with no id.
_ID_OF = {
    "tracks": ("track", "concat_ws('|', title, array_to_string(artists, ';'), album, isrc, "
                        "CAST(duration_ms AS VARCHAR))"),
    "releases": ("release", "concat_ws('|', title, array_to_string(artists, ';'), upc)"),
    "artists": ("artist", "lower(name)"),
}


def _date_sql(x: str) -> str:
    """SQL: a release date written at year, month or day precision, as a DATE (else NULL)."""
    return (f"CASE length({x}) WHEN 4 THEN TRY_CAST({x} || '-01-01' AS DATE) "
            f"WHEN 7 THEN TRY_CAST({x} || '-01' AS DATE) "
            f"WHEN 10 THEN TRY_CAST({x} AS DATE) "
            f"ELSE CASE WHEN substr({x}, 11, 1) IN (' ', 'T') THEN TRY_CAST(left({x}, 10) AS DATE)"
            f" END END")
