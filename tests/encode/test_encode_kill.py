"""A run killed with SIGKILL mid-way, then run again, ends exactly like an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from encfix import SONIC_PI, Track, run_cli, store_listing, tone_file

from soundkeep import archive

SAMPLES = ["ambi_choir", "ambi_dark_woosh", "ambi_drone", "ambi_glass_hum", "ambi_glass_rub",
           "ambi_lunar_land", "ambi_soft_buzz", "ambi_swoosh", "bass_drop_c", "bass_voxy_c"]


def outputs(root: Path) -> dict[int, tuple]:
    with archive.open_archive(root) as arch:
        rows = arch.con.execute("""
            SELECT track_id, status, output_sha256, output_path, patch_sha256, duration_ms
            FROM encode_outputs ORDER BY track_id""").fetchall()
        failed = arch.con.execute(
            "SELECT DISTINCT track_id, reason FROM encode_journal WHERE status = 'failed' "
            "ORDER BY track_id").fetchall()
    return {r[0]: r[1:] for r in rows} | {r[0]: ("failed", r[1]) for r in failed}


def test_killed_run_resumes_to_the_same_end(tmp_path: Path,
                                            make_archive: Callable[..., archive.Archive]
                                            ) -> None:
    src = tmp_path / "src"
    tracks = [Track(i + 1, name, "original" if i % 4 == 3 else "reencode",
                    SONIC_PI / f"{name}.flac") for i, name in enumerate(SAMPLES)]
    tracks.append(Track(99, "Tone", "reencode", tone_file(src / "t.flac", seconds=3.0)))
    roots = []
    for name in ("killed", "whole"):
        arch = make_archive(tracks, name=name)
        roots.append(arch.root)
        arch.close()
    killed, whole = roots
    originals = store_listing(killed)

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from soundkeep.cli import main; main()", "encode", "-a",
         str(killed), "--workers", "1", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        # Kill (the command and its worker, SIGKILL) once some outputs are in the store.
        while time.monotonic() < deadline and proc.poll() is None:
            if len(store_listing(killed)) >= len(originals) + 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    mid = store_listing(killed)
    assert len(originals) < len(mid) < len(originals) + 2 * len(tracks)

    run_cli(["encode", "-a", str(killed), "--workers", "2"])
    run_cli(["encode", "-a", str(whole), "--workers", "2"])
    assert store_listing(killed) == store_listing(whole)
    assert outputs(killed) == outputs(whole)
    assert len(outputs(whole)) == len(tracks)
    again = run_cli(["encode", "-a", str(killed), "--json"]).stdout
    assert '"skipped": 11' in again and '"encoded": 0' in again
