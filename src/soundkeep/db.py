"""Storage helpers that know nothing about music: connections, migrations, stable ids."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

# A stage declares its tables in a module exposing STAGE (a name) and MIGRATIONS: an ordered
# list of (version, DDL) pairs. Migrations run in order, once each, recorded in meta.
SCHEMA_MODULES = [
    "soundkeep.catalog.schema",
    "soundkeep.audio.schema",
    "soundkeep.plan.schema",
    "soundkeep.audio.encode_schema",
]

META_DDL = "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)"

# Stable 64-bit ids: the first 8 bytes of md5(kind ':' namespace ':' key), as a signed BIGINT
# (so SQLite and Parquet readers see the same number). Same key, same id, on any machine.
ID_MACRO = """
CREATE OR REPLACE MACRO sk_id(kind, ns, k) AS
  CAST(CAST(('0x' || left(md5(kind || ':' || ns || ':' || k), 16)) AS UBIGINT)::HUGEINT
       - 9223372036854775808 AS BIGINT)
"""


def stable_id(kind: str, namespace: str, key: str) -> int:
    """Python twin of the sk_id SQL macro."""
    digest = hashlib.md5(f"{kind}:{namespace}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") - 2**63


def now() -> datetime:
    """The current time in UTC (one clock for every stage)."""
    return datetime.now(UTC)


def literal(text: str) -> str:
    """A SQL string literal (quotes doubled) for text built into a statement."""
    return "'" + text.replace("'", "''") + "'"


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
        ) -> tuple[Any, ...] | None:
    """The first row of a query, or None; the result is always consumed (DuckDB 2 keeps a
    half-read result open and refuses other work on the connection until it is finished)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first value of the first row, or None."""
    row = one(con, sql, params)
    return None if row is None else row[0]


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT; any exception (an interrupt included) rolls back and propagates."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # the transaction may already be gone
            con.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def setting(con: duckdb.DuckDBPyConnection, name: str, value: str) -> Iterator[None]:
    """SET a DuckDB setting for the statements inside; the previous value is restored."""
    previous = scalar(con, f"SELECT current_setting('{name}')")
    con.execute(f"SET {name} = {value}")
    try:
        yield
    finally:
        old = str(previous).lower() if isinstance(previous, bool) else repr(previous)
        con.execute(f"SET {name} = {old}")


def digests(con: duckdb.DuckDBPyConnection, specs: Sequence[tuple[str, Sequence[str]]]
            ) -> dict[tuple[str, str], str]:
    """Order-independent digests of tables, one scan each: for every (table, column lists),
    per column list the row count and the wrapping 64-bit sum of the rows' hashes of those
    columns (summed in 32-bit halves: exact in any order), as 'count-hex', by (table,
    columns) in the order given."""
    parts = []
    for i, (table, colsets) in enumerate(specs):
        sums = ", ".join(f"coalesce(sum(h{k} >> 32), 0), coalesce(sum(h{k} & 4294967295), 0)"
                         for k in range(len(colsets)))
        hashes = ", ".join(f"hash({cols}) AS h{k}" for k, cols in enumerate(colsets))
        parts.append(f"SELECT {i} AS i, [count(*), {sums}] AS v "
                     f"FROM (SELECT {hashes} FROM {table})")
    rows = con.execute(f"SELECT v FROM ({' UNION ALL '.join(parts)}) ORDER BY i").fetchall()
    out: dict[tuple[str, str], str] = {}
    for (table, colsets), (v,) in zip(specs, rows, strict=True):
        n, halves = int(v[0]), [int(x) for x in v[1:]]
        for cols, hi, lo in zip(colsets, halves[::2], halves[1::2], strict=True):
            out[(table, cols)] = f"{n}-{((hi << 32) + lo) % (1 << 64):016x}"
    return out


def get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """Read one meta value."""
    value = scalar(con, "SELECT value FROM meta WHERE key = ?", [key])
    return None if value is None else str(value)


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Write one meta value."""
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])


def migrate(con: duckdb.DuckDBPyConnection, modules: Iterable[str] = SCHEMA_MODULES) -> None:
    """Bring every stage's tables to its newest version, each migration in its own transaction."""
    con.execute(META_DDL)
    for name in modules:
        mod = importlib.import_module(name)
        stage: str = mod.STAGE
        key = f"schema_version.{stage}"
        current = int(get_meta(con, key) or 0)
        for version, ddl in mod.MIGRATIONS:
            if version <= current:
                continue
            with transaction(con):
                con.execute(ddl)
                set_meta(con, key, str(version))
    # Created again only when its definition changed: any DDL, even the same, goes to the
    # write-ahead log, and a connection that wrote it checkpoints the whole catalog on close
    # (1.1-1.5 s at 10 M and 100 M tracks, on every command).
    exists = scalar(con, "SELECT count(*) FROM duckdb_functions() WHERE function_name = "
                         "'sk_id' AND function_type = 'macro'")
    if get_meta(con, "id_macro") != ID_MACRO or not exists:
        with transaction(con):
            con.execute(ID_MACRO)
            set_meta(con, "id_macro", ID_MACRO)
