"""Catalog commands: init, synth, ingest, stats, refresh, quarantine."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from soundkeep import archive
from soundkeep.cli_common import ArchiveOpt, JsonOpt, console, err_console, print_json, progress
from soundkeep.db import one
from soundkeep.errors import ConfigError
from soundkeep.units import format_size


def init(archive_dir: ArchiveOpt = archive.default_path()) -> None:
    """Create an archive: soundkeep.toml with documented defaults, the catalog, quarantine/."""
    arch = archive.init(archive_dir)
    arch.close()
    console.print(f"archive ready at [bold]{archive_dir}[/bold]")


def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the Parquet files.",
                                      file_okay=False)],
    tracks: Annotated[int, typer.Option("--tracks", "-n", min=1, help="Number of tracks.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same catalog).")]
    = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write a deterministic synthetic catalog of the reference shape."""
    from soundkeep.catalog.synth import write_catalog

    with progress("tracks", quiet=as_json) as prog:
        task = prog.add_task("synth", total=tracks)
        summary = write_catalog(out, tracks, seed, on_progress=lambda n: prog.advance(task, n))
    if as_json:
        print_json(summary.as_dict())
    else:
        console.print(f"wrote {summary.tracks:,} tracks, {summary.releases:,} releases, "
                      f"{summary.artists:,} artists to [bold]{out}[/bold] "
                      f"(source {summary.source})")


def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    archive_dir: ArchiveOpt = archive.default_path(),
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="csv, tsv, jsonl, parquet or sqlite (default: from the file).")]
    = None,
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", "-m", help="TOML file mapping source columns onto catalog fields.",
        exists=True, dir_okay=False)] = None,
    source: Annotated[str | None, typer.Option(
        "--source", help="Name of the source (namespace of its ids); default: from the file.")]
    = None,
    entity: Annotated[str | None, typer.Option(
        "--entity", help="tracks, releases or artists (default: from the file).")] = None,
    table: Annotated[str | None, typer.Option("--table", help="SQLite table to read.")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of CSV/JSON.")]
    = "utf-8",
    rights: Annotated[str | None, typer.Option(
        "--rights", help="With --format tags: the rights status of these files, e.g. CC0-1.0.")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest catalog files; bad rows go to quarantine, a bad file is refused whole (exit 2).

    Besides csv, tsv, jsonl, parquet and sqlite, --format takes the open-data importers:
    musicbrainz (JSON dumps), listenbrainz (listen counts), beets (library.db) and tags
    (catalog rows from the tags of audio files in the given directories).
    """
    from soundkeep.catalog.ingest import ingest_paths
    from soundkeep.catalog.readers import FORMATS

    plugin_formats = _plugin_formats()
    if fmt is not None and fmt not in FORMATS and fmt not in plugin_formats:
        raise ConfigError("unknown format", field="--format", value=fmt,
                          expected="one of " + ", ".join((*FORMATS, *plugin_formats)))
    arch = archive.open_archive(archive_dir)
    with progress("bytes", quiet=as_json) as prog:
        tasks: dict[str, Any] = {}

        def on_progress(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = prog.add_task(Path(name).name, total=total)
            prog.update(tasks[name], completed=done, total=total)

        if fmt == "tags":
            results = plugin_formats[fmt](arch, sources, rights, on_progress)
        elif fmt in plugin_formats:
            results = plugin_formats[fmt](arch, sources, on_progress)
        else:
            results = ingest_paths(arch, sources, fmt=fmt, mapping_path=mapping, source=source,
                                   entity=entity, table=table, encoding=encoding,
                                   on_progress=on_progress)
    arch.close()
    failed = [r for r in results if r.error]
    if as_json:
        print_json({"files": [r.as_dict() for r in results],
                    "rows_read": sum(r.rows_read for r in results),
                    "rows_accepted": sum(r.rows_accepted for r in results),
                    "rows_quarantined": sum(r.rows_quarantined for r in results),
                    "refused_files": len(failed)})
    else:
        t = Table(title="ingest")
        for col in ("file", "entity", "read", "accepted", "quarantined", "note"):
            t.add_column(col, justify="right" if col in ("read", "accepted", "quarantined")
                         else "left")
        for r in results:
            note = "refused" if r.error else ("already ingested" if r.skipped else
                                              f"{r.seconds:.1f}s")
            t.add_row(Path(r.file).name, r.entity, f"{r.rows_read:,}", f"{r.rows_accepted:,}",
                      f"{r.rows_quarantined:,}", note)
        console.print(t)
    for r in failed:
        err_console.print(f"[red]error:[/red] {r.error}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(2)


def _plugin_formats() -> dict[str, Any]:
    """Importers for open-data formats (MusicBrainz, ListenBrainz, beets) by --format name."""
    try:
        from soundkeep.sources import IMPORTERS
    except ImportError:
        return {}
    return dict(IMPORTERS)


def stats(archive_dir: ArchiveOpt = archive.default_path(), as_json: JsonOpt = False) -> None:
    """Catalog statistics: counts, shared ISRCs, popularity, genres, release years."""
    from soundkeep.catalog.stats import catalog_stats

    arch = archive.open_archive(archive_dir)
    figures = catalog_stats(arch.con)
    db_bytes = arch.catalog_path.stat().st_size if arch.catalog_path.exists() else 0
    figures["catalog_bytes"] = db_bytes
    arch.close()
    if as_json:
        print_json(figures)
        return
    t = Table(title="catalog", show_header=False)
    for key in ("tracks", "releases", "artists", "track_artists", "release_artists", "genres",
                "isrcs_unique", "isrcs_shared", "isrc_max_rows", "distributable", "explicit",
                "quarantined", "sources"):
        t.add_row(key.replace("_", " "), f"{figures[key]:,}")
    t.add_row("catalog size", format_size(db_bytes))
    console.print(t)
    hist = Table(title="popularity")
    hist.add_column("popularity")
    hist.add_column("tracks", justify="right")
    hist.add_column("share", justify="right")
    total = max(1, figures["tracks"])
    for bucket, n in figures["popularity_histogram"].items():
        hist.add_row(bucket, f"{n:,}", f"{100 * n / total:.3f} %")
    console.print(hist)
    if figures["top_genres"]:
        g = Table(title="top genres (artists)")
        g.add_column("genre")
        g.add_column("artists", justify="right")
        for row in figures["top_genres"][:10]:
            g.add_row(row["genre"], f"{row['artists']:,}")
        console.print(g)
    years = figures["tracks_per_year"]
    if years:
        recent = list(years.items())[-10:]
        console.print("tracks per release year (last 10): " +
                      ", ".join(f"{y}: {n:,}" for y, n in recent))


def refresh(archive_dir: ArchiveOpt = archive.default_path(), as_json: JsonOpt = False) -> None:
    """Make what tracks keep of their artists and release, which lets the plan skip that
    work (after ingest or edits by hand; until then the plan does it itself)."""
    from soundkeep.catalog import derived

    with archive.open_archive(archive_dir) as arch:
        changed = derived.refresh(arch.con)
    if as_json:
        print_json({"tracks_changed": changed})
    else:
        console.print(f"{changed:,} tracks changed")


def quarantine(
    archive_dir: ArchiveOpt = archive.default_path(),
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows to show (0 = all).")] = 50,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write every quarantined row to this CSV file.", dir_okay=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """What was refused, where, and why."""
    arch = archive.open_archive(archive_dir)
    where = "WHERE stage = ?" if stage else ""
    params = [stage] if stage else []
    lim = f"LIMIT {int(limit)}" if limit and not export else ""
    rows = arch.con.execute(
        f"SELECT stage, source_file, row_number, field, value, reason FROM quarantine {where} "
        f"ORDER BY stage, source_file, row_number NULLS FIRST {lim}", params).fetchall()
    total = one(arch.con, f"SELECT count(*) FROM quarantine {where}", params)
    arch.close()
    cols = ("stage", "file", "row", "field", "value", "reason")
    if export:
        tmp = export.with_suffix(export.suffix + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows(rows)
        tmp.replace(export)
    if as_json:
        print_json({"total": total[0] if total else 0,
                    "rows": [dict(zip(cols, r, strict=True)) for r in rows]})
        return
    if export:
        console.print(f"wrote {len(rows):,} rows to {export}")
        return
    t = Table(title=f"quarantine ({total[0] if total else 0:,} rows)")
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    console.print(t)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add the catalog commands to the app."""
    app.command("init")(init)
    app.command("synth")(synth)
    app.command("ingest")(ingest)
    app.command("stats")(stats)
    app.command("refresh")(refresh)
    app.command("quarantine")(quarantine)
