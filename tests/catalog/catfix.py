"""Helpers for the catalog tests: run the CLI in-process, dump a catalog, edit settings."""

from __future__ import annotations

import csv
import json
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from typer.testing import CliRunner

from soundkeep import cli

PLAIN_HEADER = ["title", "artist", "album", "isrc", "duration_ms", "popularity"]
# Columns that hold a clock time: the only thing two equal catalogs may differ in.
TIME_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "DATE_TIME")


@dataclass
class CliResult:
    """What one run of the soundkeep command did."""

    code: int
    out: str
    err: str
    exception: BaseException | None = None

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.out)

    def error_lines(self) -> list[str]:
        """The non-empty lines of stderr."""
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(*args: str | Path, env: dict[str, str] | None = None) -> CliResult:
    """Run `soundkeep ARGS` through cli.main (as the installed command does), in-process.

    An exception that escapes main would be a traceback for the user: it is kept in
    `exception` and its traceback appended to stderr, so tests see it.
    """
    runner = CliRunner()
    argv = ["soundkeep", *(str(a) for a in args)]
    old_argv = sys.argv
    code = 0
    exc: BaseException | None = None
    tb = ""
    with runner.isolation(env=env) as streams:
        sys.argv = argv
        try:
            cli.main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except Exception as caught:
            exc = caught
            code = 1
            tb = traceback.format_exc()
        finally:
            sys.argv = old_argv
        out = streams[0].getvalue().decode("utf-8", "replace")
        err = streams[1].getvalue().decode("utf-8", "replace") + tb
    return CliResult(code, out, err, exc)


def dump_catalog(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of an archive's catalog, rows sorted, clock-time columns left out."""
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema = 'main' ORDER BY 1").fetchall()]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in tables:
            cols = [name for name, kind in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
                [table]).fetchall() if not kind.startswith("TIMESTAMP")]
            col_sql = ", ".join(f'"{c}"' for c in cols)
            out[table] = con.execute(
                f'SELECT {col_sql} FROM "{table}" ORDER BY ALL').fetchall()
        return out
    finally:
        con.close()


def set_setting(root: Path, section: str, key: str, value: str) -> None:
    """Set `key = value` (a TOML literal) in [section] of an archive's soundkeep.toml."""
    path = root / "soundkeep.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    current = None
    for i, line in enumerate(lines):
        head = re.match(r"^\[([^\]]+)\]\s*$", line)
        if head:
            current = head.group(1)
        elif current == section and re.match(rf"^{re.escape(key)}\s*=", line):
            lines[i] = f"{key} = {value}"
            break
    else:
        raise AssertionError(f"no {section}.{key} in {path}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_csv(path: Path, header: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
    """A CSV (or TSV) file with a header row."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
         ) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    return con.execute(sql, params or []).fetchall()


def track_view(root: Path) -> list[tuple[Any, ...]]:
    """Each track as (title, artists in order, album, isrc, duration_ms, popularity), sorted:
    what a catalog says about its tracks, whatever file format it came from."""
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    try:
        return con.execute("""
            SELECT t.title,
                   (SELECT string_agg(a.name, ' & ' ORDER BY ta.position)
                    FROM track_artists ta JOIN artists a USING (artist_id)
                    WHERE ta.track_id = t.track_id) AS artists,
                   r.title AS album, t.isrc, t.duration_ms, t.popularity
            FROM tracks t LEFT JOIN releases r USING (release_id)
            ORDER BY ALL""").fetchall()
    finally:
        con.close()


def query(root: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """All rows of a query on an archive's catalog (opened read-only, then closed)."""
    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
