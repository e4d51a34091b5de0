"""Benchmark: synthetic catalog generation and ingest, against a bare DuckDB copy of the same files.

    .venv/bin/python bench/bench_ingest.py --tracks 1000000 10000000

For each size: synth speed (tracks/s), then in the same run the bare copy
(`CREATE TABLE ... AS SELECT * FROM read_parquet(...)` of each file) and soundkeep's ingest
(validation, ids, dedupe grouping, provenance), each in a fresh process so peak memory (max RSS)
is its own. Prints one JSON object per size; `ratio` = ingest rows/s / bare rows/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Peak resident memory of this process alone (VmHWM; ru_maxrss would carry the parent's).
PEAK = """
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""

BARE = PEAK + """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
t = time.perf_counter()
for name in ("artists", "releases", "tracks"):
    src = f"{sys.argv[2]}/{name}.parquet"
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{src}')")
con.close()
print(time.perf_counter() - t, peak())
"""

INGEST = PEAK + """
import sys, time
from pathlib import Path
from soundkeep import archive
from soundkeep.catalog.ingest import ingest_paths
arch = archive.init(Path(sys.argv[1]))
t = time.perf_counter()
res = ingest_paths(arch, [Path(sys.argv[2])])
arch.close()
assert not any(r.error for r in res), res
print(time.perf_counter() - t, peak())
"""


def _peak_self() -> int:
    """This process's peak memory, by the same snippet the timed child processes run."""
    ns: dict[str, Any] = {}
    exec(PEAK, ns)  # our own constant
    return int(ns["peak"]() or 0)


def _run(code: str, *args: str) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[-2]), int(out[-1])


def bench(tracks: int, work: Path, bare: bool = True, repeat: int = 1) -> dict[str, object]:
    """Synth, then bare copy and ingest alternately `repeat` times at one size (medians)."""
    from soundkeep.catalog.synth import write_catalog

    src = work / f"synth-{tracks}"
    t = time.perf_counter()
    summary = write_catalog(src, tracks, seed=1)
    synth_s = time.perf_counter() - t
    synth_rss = _peak_self()
    rows = summary.tracks + summary.releases + summary.artists
    parquet_bytes = sum(f.stat().st_size for f in src.iterdir())
    bares, ingests = [], []
    for _ in range(repeat):
        # Alternate the two, so a slow spell of the machine hits both alike.
        if bare:
            bares.append(_run(BARE, str(work / "bare.duckdb"), str(src)))
            (work / "bare.duckdb").unlink()
        ingests.append(_run(INGEST, str(work / "archive"), str(src)))
        catalog_bytes = (work / "archive" / "catalog.duckdb").stat().st_size
        shutil.rmtree(work / "archive")
    shutil.rmtree(src)
    bare_s = statistics.median(b[0] for b in bares) if bare else 0.0
    bare_rss = max((b[1] for b in bares), default=0)
    ingest_s = statistics.median(i[0] for i in ingests)
    ingest_rss = max(i[1] for i in ingests)
    return {
        "tracks": tracks,
        "rows_all_entities": rows,
        "synth_seconds": round(synth_s, 2),
        "synth_tracks_per_s": round(tracks / synth_s),
        "synth_peak_rss_bytes": synth_rss,
        "parquet_bytes": parquet_bytes,
        "bare_seconds": round(bare_s, 2),
        "bare_tracks_per_s": round(tracks / bare_s) if bare else None,
        "bare_peak_rss_bytes": bare_rss,
        "ingest_seconds": round(ingest_s, 2),
        "ingest_tracks_per_s": round(tracks / ingest_s),
        "ingest_peak_rss_bytes": ingest_rss,
        "catalog_bytes": catalog_bytes,
        "ratio": round(bare_s / ingest_s, 3) if bare else None,
        "runs": repeat,
        "bare_seconds_each": [round(b[0], 2) for b in bares],
        "ingest_seconds_each": [round(i[0], 2) for i in ingests],
    }


def main() -> None:
    """Run the sizes given on the command line and print JSON lines."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tracks", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (medians reported)")
    ap.add_argument("--skip-bare", action="store_true",
                    help="no bare copy (for the largest run, where disk is short)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in args.tracks:
            print(json.dumps(bench(n, Path(tmp), bare=not args.skip_bare,
                                        repeat=args.repeat)), flush=True)


if __name__ == "__main__":
    main()
