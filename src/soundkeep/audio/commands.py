"""Audio holdings commands: scan (walk, read, store, link) and holdings (what the archive keeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from soundkeep import archive
from soundkeep.cli_common import ArchiveOpt, JsonOpt, console, err_console, print_json, progress
from soundkeep.errors import ConfigError
from soundkeep.units import format_size


def scan(
    dirs: Annotated[list[Path], typer.Argument(help="Directories (or files) to scan.")],
    archive_dir: ArchiveOpt = archive.default_path(),
    copy: Annotated[bool, typer.Option("--copy", help="Copy each file into the store.")] = False,
    link: Annotated[bool, typer.Option(
        "--link", help="Hard-link each file into the store (same file system).")] = False,
    in_place: Annotated[bool, typer.Option(
        "--in-place", help="Leave files where they are; the archive records their paths.")]
    = False,
    no_fingerprint: Annotated[bool, typer.Option(
        "--no-fingerprint", help="Skip Chromaprint fingerprints (faster).")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=0, help="Worker processes (0 = one per core).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Scan audio files into the holdings: probe, hash, tag-read, fingerprint, store, link."""
    from soundkeep.audio import scan as scanmod

    chosen = [m for m, on in (("copy", copy), ("link", link), ("in_place", in_place)) if on]
    if len(chosen) > 1:
        raise ConfigError("choose one storage mode", value=" ".join(chosen),
                          expected="one of --copy, --link, --in-place")
    arch = archive.open_archive(archive_dir)
    with arch:
        opts = scanmod.options_from_settings(arch.settings)
        if chosen:
            opts.mode = chosen[0]
        if no_fingerprint:
            opts.fingerprint = False
        if workers is not None:
            opts.workers = workers
        with progress("files", quiet=as_json) as prog:
            task = prog.add_task("scan", total=None)

            def on_total(files: int, nbytes: int) -> None:
                prog.update(task, total=files)

            report = scanmod.scan(arch, dirs, opts, on_total=on_total,
                                  on_progress=lambda n, _b: prog.advance(task, n))
    if as_json:
        print_json(report.as_dict())
        return
    for w in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    console.print(
        f"{report.found:,} audio files found: {report.read:,} read "
        f"({format_size(report.bytes_read)}), {report.unchanged:,} unchanged; "
        f"{report.new_contents:,} new, {report.duplicates:,} already held, "
        f"{report.quarantined:,} quarantined, {report.gone:,} gone "
        f"in {report.seconds:.1f} s", highlight=False)
    if report.links:
        console.print("links: " + ", ".join(f"{m} {n:,}" for m, n in sorted(report.links.items())),
                      highlight=False)


def holdings(
    archive_dir: ArchiveOpt = archive.default_path(),
    unlinked: Annotated[bool, typer.Option(
        "--unlinked", help="List the files not linked to a track (unmatched or ambiguous).")]
    = False,
    limit: Annotated[int, typer.Option(
        "--limit", min=0, help="With --unlinked: at most this many files (0 = all).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """What the archive holds: files, bytes, links by method, codecs, bitrates, duplicates."""
    from soundkeep.audio import link as linkmod
    from soundkeep.audio import scan as scanmod

    arch = archive.open_archive(archive_dir)
    with arch:
        if unlinked:
            rows = linkmod.unlinked_files(arch.con, limit)
            if as_json:
                print_json({"unlinked": rows})
            else:
                _print_unlinked(rows)
            return
        report = scanmod.holdings(arch.con)
    if as_json:
        print_json(report)
        return
    _print_holdings(report)


def _print_holdings(r: dict[str, Any]) -> None:
    console.print(
        f"{r['files']:,} files, {format_size(r['bytes'])}, {r['duration_s'] / 3600:,.1f} h "
        f"({r['paths']:,} paths); linked {r['linked']:,} to {r['linked_tracks']:,} tracks, "
        f"unlinked {r['unlinked']:,} ({r['ambiguous']:,} ambiguous); "
        f"quarantined {r['quarantined']:,}", highlight=False)
    t = Table("link method", "files")
    for m, n in r["by_link_method"].items():
        t.add_row(m, f"{n:,}")
    console.print(t)
    t = Table("codec", "files", "bytes")
    for c, v in r["by_codec"].items():
        t.add_row(c, f"{v['files']:,}", format_size(v["bytes"]))
    console.print(t)
    t = Table("bitrate (kbit/s)", "files")
    for b, n in r["by_bitrate_kbps"].items():
        t.add_row(b, f"{n:,}")
    console.print(t)
    d = r["duplicates_by_fingerprint"]
    console.print(f"duplicates by fingerprint: {d['groups']:,} recordings held as "
                  f"{d['files']:,} different files ({format_size(d['bytes'])})",
                  highlight=False)


def _print_unlinked(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("every held file is linked to a track")
        return
    t = Table("status", "title", "artist", "duration", "candidates")
    t.add_column("path", overflow="fold")
    for r in rows:
        dur = "" if r["duration_ms"] is None else f"{r['duration_ms'] / 1000:.1f} s"
        cands = ", ".join(f"{c['track_id']} {c['title']!r} ({c['confidence']:.2f})"
                          for c in r["candidates"][:3])
        t.add_row(r["status"], r["title"] or "", r["artist"] or "", dur, cands, r["path"])
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add the audio holdings commands to the app."""
    app.command("scan")(scan)
    app.command("holdings")(holdings)
