"""The encode command: carry out the plan on local cores or a Ray cluster."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from soundkeep import archive
from soundkeep.cli_common import ArchiveOpt, JsonOpt, console, print_json, progress
from soundkeep.units import format_size


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def encode(
    archive_dir: ArchiveOpt = archive.default_path(),
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", min=1,
        help="Worker processes (default: all cores). With --ray: at most this many tasks "
             "at once (and the CPUs of a local Ray instance).")] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS",
        help="Run the tasks on the Ray cluster at ADDRESS (e.g. ray://head:10001), or 'auto' "
             "to start a local Ray instance. The archive must be on storage every node "
             "mounts at the same path.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=0, help="Do at most this many tracks in this run (most important "
                               "first).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Report what would be done, the bytes expected and the time a short "
                          "calibration run predicts; change nothing.")] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Try again the tracks an earlier run recorded as failed.")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-encode (Ogg Opus) or keep each held track as its plan tier says, with metadata.

    Every output is verified (decodes fully, same duration, not silent) before it counts; a
    failed file keeps its original and gets a status and reason. The run is journaled: stop
    it at any moment and run it again to continue; a run after success does nothing.
    """
    from soundkeep.audio.encode_run import Summary, run_encode
    from soundkeep.audio.encode_run import dry_run as do_dry_run

    arch = archive.open_archive(archive_dir)
    with arch:
        if dry_run:
            report = do_dry_run(arch, workers=workers, limit=limit, retry_failed=retry_failed)
            if as_json:
                print_json(report)
            else:
                _print_dry_run(report)
            return
        with progress("files", quiet=as_json) as prog:
            task: list[Any] = []

            def started(s: Summary) -> None:
                if s.todo:
                    task.append(prog.add_task("encode", total=s.todo))

            def advanced(s: Summary) -> None:
                if not task:
                    return
                d = s.as_dict()
                prog.update(task[0], completed=s.done, description=(
                    f"encode {d['realtime_factor']:.0f}x realtime, "
                    f"{format_size(max(0, d['bytes_saved']))} saved"))

            summary = run_encode(arch, workers=workers, ray=ray, limit=limit,
                                 retry_failed=retry_failed, on_start=started,
                                 on_result=advanced)
    if as_json:
        print_json(summary.as_dict())
    else:
        _print_summary(summary.as_dict())


def _print_summary(d: dict[str, Any]) -> None:
    table = Table(title="encode", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, key in (("re-encoded", "encoded"), ("kept original (tagged)", "kept_original"),
                       ("failed (original kept)", "failed"), ("done before", "skipped"),
                       ("planned but not held", "not_held")):
        table.add_row(label, f"{d[key]:,}")
    table.add_row("bytes in -> out", f"{format_size(d['bytes_in'])} -> "
                                      f"{format_size(d['bytes_out'])}")
    table.add_row("speed", f"{d['realtime_factor']}x realtime, "
                           f"{d['files_per_second']} files/s on {d['executor']}")
    console.print(table)
    for code, n in sorted(d["failures"].items()):
        console.print(f"  failed: {code}: {n:,}")


def _print_dry_run(d: dict[str, Any]) -> None:
    console.print(
        f"would re-encode {d['to_encode']:,} and keep {d['to_keep_original']:,} originals "
        f"({d['skipped']:,} done before, {d['not_held']:,} planned but not held)")
    console.print(f"audio: {_duration(d['audio_seconds'])}; bytes in "
                  f"{format_size(d['bytes_in'])}, expected out "
                  f"{format_size(d['expected_bytes_out'])}")
    for codec, c in sorted(d["calibration"].items()):
        console.print(f"calibration {codec}: {c['files']} files, {c['realtime_factor']}x "
                      f"realtime per core")
    if d["estimated_seconds"] is not None:
        console.print(f"estimated time: {_duration(d['estimated_seconds'])} on "
                      f"{d['workers']} workers ({_duration(d['estimated_core_seconds'])} of "
                      f"one core)")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the app."""
    app.command("encode")(encode)
