"""Benchmark `soundkeep plan` on synthetic catalogs of the reference shape; prints JSON.

For each size: a catalog from soundkeep.catalog.synth, ingested into an archive and refreshed
(`soundkeep refresh`, timed: `refresh_s`; prepared once and kept in --workdir), then one plan
with the reference budget scaled to the catalog size (300 TB for 256,039,007 tracks). Each
size runs in its own process so its peak memory is its own. Baselines in the same run:
  - the issue's targets: 10 M tracks in 10 s (scaled linearly to each size), 256 M in 300 s
    and under 16 GB; `ratio_to_target` < 1 meets the target;
  - the textbook greedy (a full sort of every hull increment) against the weighted selection
    the planner uses, on the same increments: `selection_speedup`.

    python bench/bench_plan.py                       # 1 M and 10 M
    python bench/bench_plan.py --sizes 1000000       # one size
    python bench/bench_plan.py --with-100m           # also 100 M (needs ~40 GB of disk)
    python bench/bench_plan.py --memory-limit 3GB    # DuckDB's limit for the plan (default:
                                                     # the archive's plan.memory_limit)
    python bench/bench_plan.py --heap                # also the Python side's peak heap
    python bench/bench_plan.py --stale               # as after a change since the refresh
    python bench/bench_plan.py --repeat 3            # 3 plans per size: the first as after
                                                     # a scan (`after_holdings_change_s`),
                                                     # the lower middle of the others (`plan_s`)
    python bench/bench_plan.py --held 0.4            # 40 % of the tracks hold a file
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REF_TRACKS = 256_039_007
REF_BUDGET = 300e12
TARGET_10M_S = 10.0
TARGET_256M_S = 300.0
TARGET_256M_RSS_GB = 16.0
EVERY_PLAN = 1 << 30  # plan ids up to this: every stored plan


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _mark(steps: list[tuple[str, float]], message: str) -> None:
    steps.append((message, time.perf_counter()))


def prepare(root: Path, n: int) -> None:
    """A catalog of n tracks (synth + ingest + refresh), once; later runs reuse it. The
    refresh (catalog.derived) is timed: it is what lets the plan read its inputs from tracks."""
    from soundkeep import archive
    from soundkeep.catalog import derived

    done = root / ".bench-ready"
    if not done.exists():
        from soundkeep.catalog import synth

        src = root.parent / f"synth-{n}"
        if not (src / "tracks.parquet").exists():
            synth.write_catalog(src, n, seed=0)
        archive.init(root).close()
        subprocess.run([sys.executable, "-c", "from soundkeep.cli import main; main()",
                        "ingest", "-a", str(root), str(src), "--json"], check=True,
                       stdout=subprocess.DEVNULL)
        done.write_text("ok")
    refreshed = root / ".bench-refreshed"
    if not refreshed.exists():
        with archive.open_archive(root) as arch:
            t0 = time.perf_counter()
            derived.refresh(arch.con)
            refreshed.write_text(json.dumps({"refresh_s": round(time.perf_counter() - t0, 3)}))


def hold(base: Path, root: Path, share: float) -> None:
    """A copy of the prepared archive `base` that holds a file for the most popular `share`
    of its tracks, once: rows in audio_files and audio_links only (the plan reads no audio),
    a FLAC-sized file (320 kbit/s) per track with a sha256 of its own."""
    from soundkeep import archive
    from soundkeep.audio.schema import file_key_sql

    if (root / ".bench-held").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    with archive.open_archive(root) as arch:
        con = arch.con
        n = int(con.execute("SELECT count(*) FROM tracks").fetchall()[0][0])
        con.execute(f"""CREATE TEMP TABLE _held AS
            SELECT track_id, sha256('bench-held-' || track_id) AS sha,
                   greatest(coalesce(duration_ms, 200000), 1000) AS ms
            FROM tracks ORDER BY popularity DESC NULLS LAST, track_id
            LIMIT {round(n * share)}""")
        con.execute(f"""INSERT INTO audio_files (sha256, size, store_path, storage_mode, codec,
                        bitrate, duration_ms, file_key)
                        SELECT sha, ms * 40, 'store/' || sha, 'copy', 'flac', 320000, ms,
                               {file_key_sql('sha')}
                        FROM _held""")
        con.execute(f"INSERT INTO audio_links SELECT sha, track_id, 'isrc', 1.0, now(), "
                    f"{file_key_sql('sha')} FROM _held")
    (root / ".bench-held").write_text("ok")


def run_one(root: Path, n: int, memory_limit: str | None = None, heap: bool = False,
            stale: bool = False, repeat: int = 1) -> dict[str, object]:
    """Plan the prepared archive `repeat` times (and again, unchanged); time, CPU, memory,
    figures of the median run. stale: as if the catalog had changed since its refresh (the
    plan makes its inputs)."""
    import numpy as np

    from soundkeep import archive, db, units
    from soundkeep.catalog import derived
    from soundkeep.plan import budget as knapsack
    from soundkeep.plan import priority
    from soundkeep.plan import store as plan_store
    from soundkeep.plan.config import load_plan_settings, plan_memory_limit
    from soundkeep.plan.planner import make_plan

    budget = round(REF_BUDGET * n / REF_TRACKS)
    with archive.open_archive(root) as arch:
        con = arch.con
        limit = (units.parse_size(memory_limit, "--memory-limit") if memory_limit
                 else plan_memory_limit(arch.settings))
        made = db.get_meta(con, derived.META_KEY)
        if stale:
            # As after a change to the catalog: the plan makes its inputs itself.
            db.set_meta(con, derived.META_KEY, "stale")
        ps = load_plan_settings(arch.settings, budget=str(budget))
        # The first run is the first plan after the holdings changed (a scan): it finds each
        # held track's file again (plan_held); later runs read the files it found.
        con.execute("DELETE FROM meta WHERE key = ?", [priority.HELD_META])
        try:
            runs = []
            load_before = os.getloadavg()[0]
            for _ in range(repeat):  # each time from no stored plan
                plan_store.forget_plans(con, EVERY_PLAN)
                con.execute("CHECKPOINT")
                steps: list[tuple[str, float]] = []
                t0, c0 = time.perf_counter(), _cpu()
                result = make_plan(con, ps, memory_limit=limit,
                                   step=functools.partial(_mark, steps))
                wall, cpu = time.perf_counter() - t0, _cpu() - c0
                marks = [*steps, ("done", t0 + wall)]
                runs.append((wall, cpu, {a[0]: round(b[1] - a[1], 3)
                                         for a, b in itertools.pairwise(marks)}))
            peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            # The median run (the lower middle one of an even number) of those after the
            # first, which alone finds the held files (with one run, that one).
            later = runs[1:] or runs
            wall, cpu, phases = sorted(later, key=lambda r: r[0])[(len(later) - 1) // 2]
            t1 = time.perf_counter()
            again = make_plan(con, ps, memory_limit=limit)
            unchanged_s = time.perf_counter() - t1
        finally:  # a refreshed catalog stays refreshed, whatever happened
            if made is not None:
                db.set_meta(con, derived.META_KEY, made)
        heap_gb = None
        if heap:
            # The Python side's peak (numpy and Arrow arrays; not DuckDB's memory): once more,
            # untimed, under tracemalloc.
            import tracemalloc

            plan_store.forget_plans(con, EVERY_PLAN)
            tracemalloc.start()
            make_plan(con, ps, memory_limit=limit)
            heap_gb = tracemalloc.get_traced_memory()[1] / 2**30
            tracemalloc.stop()

    # The knapsack selection against the textbook full sort, on increments of this size.
    rng = np.random.default_rng(0)
    m = min(n, 10_000_000)
    dur = rng.integers(60_000, 400_000, m)
    listens = 10 ** rng.normal(1.5, 1.5, m)
    inc = knapsack.hull_increments([dur * 20, dur * 75 // 8], [listens, 0.92 * listens],
                                   [np.ones(m, dtype=bool)] * 2)
    cap = int(inc.d_bytes.sum() * 0.3)
    t2 = time.perf_counter()
    knapsack.solve(inc, cap)
    select_s = time.perf_counter() - t2
    t3 = time.perf_counter()
    order = np.lexsort((inc.key(np.arange(len(inc.eff))), -inc.eff))
    cum = np.cumsum(inc.d_bytes[order])
    int(np.searchsorted(cum, cap, side="right"))
    sort_s = time.perf_counter() - t3

    s = result.summary
    target = TARGET_10M_S * n / 10_000_000
    refreshed = root / ".bench-refreshed"
    return {
        "tracks": n,
        "tracks_held": s.get("tracks_held"),
        "derived_columns_fresh": s.get("derived_columns_fresh"),
        "refresh_s": (json.loads(refreshed.read_text())["refresh_s"] if refreshed.exists()
                      else None),
        "plan_s": round(wall, 3),
        "plan_s_runs": [round(r[0], 3) for r in runs],
        "plan_cpu_s": round(cpu, 3),
        # Other work on the machine shows here (2 cores: above ~0.5 the plan shares them).
        "load_avg_1m_before": round(load_before, 2),
        "steps_s": phases,
        # The first run, as after a scan: the held files found again.
        "after_holdings_change_s": round(runs[0][0], 3),
        "after_holdings_change_steps_s": runs[0][2],
        "peak_rss_gb": round(peak_gb, 3),
        # DuckDB's share of the peak is bounded by its memory limit (it spills beyond it).
        "duckdb_memory_limit": units.format_size(limit),
        "duckdb_memory_limit_bytes": limit,
        "python_heap_peak_gb": None if heap_gb is None else round(heap_gb, 3),
        "target_s": target,
        "ratio_to_target": round(wall / target, 3),
        "unchanged_replan_s": round(unchanged_s, 3),
        "reused": again.reused,
        "selection_s": round(select_s, 3),
        "full_sort_s": round(sort_s, 3),
        "selection_speedup": round(sort_s / select_s, 2) if select_s > 0 else None,
        "budget_bytes": budget,
        "tracks_kept_share": round(s["tracks_kept_share"], 4),
        "listens_kept_share": round(s["listens_kept_share"], 5),
        "by_tier": {k: v["tracks"] for k, v in s["by_tier"].items()},
        "phases": len(s["phases"]),
    }


def main() -> None:
    """Run every size in its own process and print the figures with the extrapolation."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--with-100m", action="store_true", help="also 100,000,000 tracks")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where catalogs are kept between runs (default: a temporary dir)")
    ap.add_argument("--memory-limit", default=None,
                    help="DuckDB memory limit for the plan (default: plan.memory_limit)")
    ap.add_argument("--heap", action="store_true",
                    help="also measure the Python side's peak heap (one more, untimed plan)")
    ap.add_argument("--stale", action="store_true",
                    help="plan as after a catalog change since `soundkeep refresh`")
    ap.add_argument("--repeat", type=int, default=1,
                    help="plans per size: the first as after a scan, then the median of the "
                         "others (timings vary)")
    ap.add_argument("--held", type=float, default=0.0,
                    help="share of the tracks (most popular first) holding a file, e.g. 0.4")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-plan-"))
    if args.one:
        root = work / f"archive-{args.one}"
        held_root = work / f"archive-{args.one}-held-{args.held:g}"
        if args.prepare:
            prepare(root, args.one)
            if args.held:
                hold(root, held_root, args.held)
        else:
            if args.held:
                root = held_root
            print(json.dumps(run_one(root, args.one, args.memory_limit, args.heap, args.stale,
                                     args.repeat)))
        return
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if args.with_100m:
        sizes.append(100_000_000)
    runs = []
    me = [sys.executable, os.path.abspath(__file__), "--workdir", str(work)]
    for n in sizes:
        held = ["--held", str(args.held)] if args.held else []
        subprocess.run([*me, "--one", str(n), "--prepare", *held], check=True)
        limit = held + (["--memory-limit", args.memory_limit] if args.memory_limit else [])
        limit += ["--heap"] if args.heap else []
        limit += ["--stale"] if args.stale else []
        limit += ["--repeat", str(args.repeat)]
        out = subprocess.run([*me, "--one", str(n), *limit], check=True, capture_output=True,
                             text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]), file=sys.stderr)
    report: dict[str, object] = {"runs": runs}
    if len(runs) >= 2:
        a, b = runs[-2], runs[-1]
        k_t = math.log(b["plan_s"] / a["plan_s"]) / math.log(b["tracks"] / a["tracks"])
        k_m = math.log(b["peak_rss_gb"] / a["peak_rss_gb"]) / math.log(b["tracks"] / a["tracks"])
        est_s = b["plan_s"] * (REF_TRACKS / b["tracks"]) ** max(k_t, 1.0)
        # Memory is bounded (DuckDB's limit) plus a few bytes per track: extrapolate the
        # growth per track measured between the two largest sizes, linearly.
        per_track = (b["peak_rss_gb"] - a["peak_rss_gb"]) / (b["tracks"] - a["tracks"])
        est_gb = b["peak_rss_gb"] + max(per_track, 0.0) * (REF_TRACKS - b["tracks"])
        extra: dict[str, object] = {}
        if a["python_heap_peak_gb"] is not None and b["python_heap_peak_gb"] is not None:
            # A model with a cap: DuckDB's part stays under its limit (it spills beyond it),
            # the Python side (measured: numpy and Arrow arrays) grows linearly with the
            # tracks, and the rest of the largest run's peak (interpreter, libraries, DuckDB
            # past its limit) stays as it was.
            heap_per_track = ((b["python_heap_peak_gb"] - a["python_heap_peak_gb"])
                              / (b["tracks"] - a["tracks"]))
            heap_256m = b["python_heap_peak_gb"] + max(heap_per_track, 0.0) * (
                REF_TRACKS - b["tracks"])
            limit_gb = b["duckdb_memory_limit_bytes"] / 2**30
            rest = max(b["peak_rss_gb"] - limit_gb - b["python_heap_peak_gb"], 0.0)
            capped = limit_gb + heap_256m + rest
            extra = {"peak_rss_gb_capped_model": round(capped, 2),
                     "python_heap_256m_gb": round(heap_256m, 2),
                     "ratio_to_target_rss_capped_model": round(capped / TARGET_256M_RSS_GB, 3)}
        report["extrapolation_256m"] = {
            "time_exponent": round(k_t, 3), "memory_exponent": round(k_m, 3),
            "plan_s": round(est_s, 1), "ratio_to_target_s": round(est_s / TARGET_256M_S, 3),
            "peak_rss_gb": round(est_gb, 2),
            "rss_bytes_per_track_between_sizes": round(per_track * 2**30, 2),
            "ratio_to_target_rss": round(est_gb / TARGET_256M_RSS_GB, 3),
            **extra,
            "note": ("time: scaled from the largest size with the measured exponent (at least "
                     "linear); memory: the largest size's peak plus the measured growth per "
                     "track, linearly (an over-estimate while DuckDB fills up to its limit); "
                     "with --heap also a model that caps DuckDB's part at its limit"),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
