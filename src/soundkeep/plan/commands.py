"""Plan commands: `soundkeep plan [explain|diff]` and `soundkeep coverage`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from soundkeep import archive, units
from soundkeep.cli_common import ArchiveOpt, JsonOpt, console, print_json, progress
from soundkeep.plan import coverage as coverage_mod
from soundkeep.plan import diff as diff_mod
from soundkeep.plan import explain as explain_mod
from soundkeep.plan.config import load_plan_settings, plan_memory_limit
from soundkeep.plan.planner import STEPS, make_plan

plan_app = typer.Typer(
    help="Plan what to keep, at which quality, inside the storage budget.",
    invoke_without_command=True,
    no_args_is_help=False,
)

BudgetOpt = Annotated[str | None, typer.Option(
    "--budget", help='Storage budget, e.g. 300TB or "unlimited" (default: plan.budget).')]
PlanIdOpt = Annotated[int | None, typer.Option("--plan", help="Plan id (default: the newest).")]


def _size(n: Any) -> str:
    return "unlimited" if n is None else units.format_size(n)


def _print_summary(s: dict[str, Any], plan_id: int, reused: bool) -> None:
    head = f"plan {plan_id}" + (" (unchanged: same catalog and settings)" if reused else "")
    console.print(f"[bold]{head}[/bold]: {s['tracks_total']:,} tracks, budget "
                  f"{_size(s['budget_bytes'])}, planned {_size(s['bytes_planned'])}")
    console.print(f"kept audio for {s['tracks_kept']:,} tracks "
                  f"({100 * s['tracks_kept_share']:.1f} % of tracks) carrying "
                  f"{100 * s['listens_kept_share']:.2f} % of listens")
    table = Table("status", "tracks", "share")
    n = max(s["tracks_total"], 1)
    for status, count in s["counts_by_status"].items():
        table.add_row(status, f"{count:,}", f"{100 * count / n:.1f} %")
    console.print(table)
    tiers = Table("tier", "tracks", "size")
    for tier, v in s["by_tier"].items():
        tiers.add_row(tier, f"{v['tracks']:,}", _size(v["bytes"]))
    console.print(tiers)
    phases = s.get("phases", [])
    if phases:
        console.print(f"{len(phases)} release phases of distributable audio, "
                      f"{_size(s['distributed_bytes'])} in all (phase 1: "
                      f"{phases[0]['tracks']:,} tracks, {_size(phases[0]['bytes'])})")
    if s.get("note"):
        console.print(f"[yellow]note:[/yellow] {s['note']}")
    if s.get("hint"):
        console.print(f"[dim]hint: {s['hint']}[/dim]")


@plan_app.callback()
def plan(ctx: typer.Context, archive_dir: ArchiveOpt = archive.default_path(),
         budget: BudgetOpt = None, json_out: JsonOpt = False) -> None:
    """Make the plan: each track's tier (original, reencode, metadata only), status and phase."""
    if ctx.invoked_subcommand is not None:
        return
    with archive.open_archive(archive_dir) as arch:
        ps = load_plan_settings(arch.settings, budget)
        memory = plan_memory_limit(arch.settings)
        with progress("steps", quiet=json_out) as prog:
            task = prog.add_task("planning", total=len(STEPS))
            begun: list[str] = []

            def step(msg: str) -> None:  # each step completes the one before
                prog.update(task, description=msg, advance=1 if begun else 0)
                begun.append(msg)

            result = make_plan(arch.con, ps, step=step, memory_limit=memory)
            prog.update(task, completed=len(STEPS), description="planned")
    if json_out:
        print_json({"plan_id": result.plan_id, "reused": result.reused, **result.summary})
    else:
        _print_summary(result.summary, result.plan_id, result.reused)


@plan_app.command("explain", context_settings={"ignore_unknown_options": True})
def explain(track: Annotated[str, typer.Argument(help="A track_id or an ISRC.")],
            archive_dir: ArchiveOpt = archive.default_path(), plan_id: PlanIdOpt = None,
            json_out: JsonOpt = False) -> None:
    """Say why a track got its tier and phase, and what budget would change it."""
    with archive.open_archive(archive_dir) as arch:
        found = explain_mod.explain(arch.con, track, plan_id)
    if json_out:
        print_json(found if len(found) > 1 else found[0])
        return
    for e in found:
        console.print(e["text"], highlight=False, markup=False)


@plan_app.command("diff")
def diff(a: Annotated[int | None, typer.Argument(help="Older plan (default: the one before B).")]
         = None,
         b: Annotated[int | None, typer.Argument(help="Newer plan (default: the newest).")]
         = None,
         archive_dir: ArchiveOpt = archive.default_path(), json_out: JsonOpt = False) -> None:
    """Compare two stored plans: settings, counts by status, tracks that changed tier."""
    with archive.open_archive(archive_dir) as arch:
        d = diff_mod.diff(arch.con, a, b)
    if json_out:
        print_json(d)
        return
    console.print(f"[bold]plan {d['a']} -> plan {d['b']}[/bold]"
                  + (" (same catalog and holdings)" if d["same_inputs"] else
                     " (catalog or holdings changed)"))
    for c in d["settings_changed"]:
        console.print(f"  setting {c['setting']}: {c['a']!r} -> {c['b']!r}", highlight=False)
    table = Table("status", "a", "b", "change")
    for status, v in d["counts_by_status"].items():
        table.add_row(status, f"{v['a']:,}", f"{v['b']:,}", f"{v['change']:+,}")
    console.print(table)
    moves = Table("from", "to", "tracks", "bytes change")
    for m in d["tier_changes"]:
        moves.add_row(m["from"], m["to"], f"{m['tracks']:,}",
                      ("+" if m["bytes_change"] >= 0 else "-")
                      + units.format_size(abs(m["bytes_change"])))
    console.print(moves)
    console.print(f"{d['tracks_changed_tier']:,} tracks changed tier")


def coverage(archive_dir: ArchiveOpt = archive.default_path(), plan_id: PlanIdOpt = None,
             json_out: JsonOpt = False,
             png: Annotated[Path | None, typer.Option(
                 "--png", help="Write the coverage chart to this PNG file.", dir_okay=False)]
             = None) -> None:
    """How much of the listening the plan keeps: coverage curve, storage per tier, genres."""
    with archive.open_archive(archive_dir) as arch:
        report = coverage_mod.coverage(arch.con, plan_id)
    if png is not None:
        coverage_mod.plot(report, png)
    if json_out:
        print_json(report)
        return
    console.print(f"[bold]plan {report['plan_id']}[/bold]: "
                  f"{100 * (report['tracks_kept_share'] or 0):.1f} % of tracks carry "
                  f"{100 * (report['listens_kept_share'] or 0):.2f} % of listens; kept "
                  f"{_size(report['bytes_kept'])} of a {_size(report['budget_bytes'])} budget")
    for point in (0.001, 0.01, 0.1, 0.37):
        near = min(report["curve"], key=lambda p: abs(p[0] - point), default=None)
        if near:
            console.print(f"  the top {100 * near[0]:.3g} % of tracks carry "
                          f"{100 * near[1]:.2f} % of listens")
    table = Table("tier", "tracks", "size")
    for tier, v in report["by_tier"].items():
        table.add_row(tier, f"{v['tracks']:,}", _size(v["bytes"]))
    console.print(table)
    genres = Table("genre", "tracks", "kept", "listens kept")
    for g in report["by_genre"][:10]:
        genres.add_row(g["genre"], f"{g['tracks']:,}", f"{100 * g['kept_share']:.1f} %",
                       f"{100 * g['listens_kept_share']:.1f} %")
    console.print(genres)
    if png is not None:
        console.print(f"chart written to {png}")


def register(app: typer.Typer) -> None:
    """Add the plan commands to the app."""
    app.add_typer(plan_app, name="plan")
    app.command("coverage")(coverage)
