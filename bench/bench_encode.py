"""Benchmark: `soundkeep encode` speed, as a ratio to the ffmpeg command line, same audio, same run.

    .venv/bin/python bench/bench_encode.py [--samples] [--no-ray]

Corpus: the Creative Commons Ogg Vorbis tracks of Debian's singularity-music (13 tracks, 45 min
of real music); --samples adds the 165 short CC0 FLAC samples of sonic-pi-samples. Every file
is re-encoded to Ogg Opus 75 kbit/s VBR:

  ffmpeg        ffmpeg -i SRC -c:a libopus -b:a 75k -vbr on OUT.opus, one process per file;
                N side by side = N threads each starting the next ffmpeg from one shared queue
  soundkeep     `soundkeep encode` on an archive holding the same files, planned `reencode`:
                decode, resample, EBU R128 loudness, Opus encode, tags, verification decode,
                hashes, store and journal (the real thing, run_encode); workers started before
                the clock starts (on a cluster they are up already), for the pool and for Ray
  pyav_plain    a bare PyAV decode -> libopus loop, one process (what the codec alone costs)
  opus_decode   decoding ffmpeg's outputs whole with PyAV, one process: what verification costs,
                and so the ceiling of any verifying encoder against the ffmpeg command line

Speed is x realtime: seconds of audio per second of wall time. Prints JSON: the speeds, the
ratios the issue asks for (1 worker / 1 ffmpeg, 2 workers / 2 ffmpeg side by side, Ray / local
pool) and the extrapolation to the reference scale. Needs the `ffmpeg` command (Debian:
apt-get install ffmpeg) and, for the Ray figure, `pip install 'soundkeep[ray]'`.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per worker, here too
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import hashlib
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av

from soundkeep import archive
from soundkeep.audio import store
from soundkeep.audio.encode import warm_up
from soundkeep.audio.encode_run import run_encode
from soundkeep.audio.schema import file_key_sql
from soundkeep.plan import store as plan_store
from soundkeep.run import make_executor

SINGULARITY = Path("/usr/share/games/singularity/music")
SONIC_PI = Path("/usr/share/sonic-pi/samples")

# The reference design (ARCHITECTURE.md): 86 M files kept in a little under 300 TB; the popular
# tier as original Ogg Vorbis (avg ~4.0 MB), the long tail re-encoded to Opus 75k (avg ~1.8 MB).
REF_FILES = 86e6
REF_BYTES = 295e12
REF_ORIGINAL_MB, REF_REENCODE_MB = 4.0, 1.8
OPUS_BPS = 75_000


def corpus(samples: bool) -> list[tuple[Path, float]]:
    """The files and their durations (seconds)."""
    files = sorted(SINGULARITY.glob("*.ogg"))
    if samples:
        files += sorted(SONIC_PI.glob("*.flac"))
    if not files:
        sys.exit("no audio: install the Debian packages singularity-music and sonic-pi-samples")
    out = []
    for f in files:
        with av.open(str(f)) as c:
            out.append((f, (c.duration or 0) / 1e6))
    return out


def build_archive(root: Path, files: list[tuple[Path, float]]) -> archive.Archive:
    """An archive holding the files (copied into the store), each planned `reencode`."""
    arch = archive.init(root)
    con = arch.con
    con.execute("INSERT INTO artists (artist_id, name) VALUES (1, 'Bench Artist')")
    con.execute("INSERT INTO releases (release_id, title) VALUES (1, 'Bench Album')")
    key = file_key_sql("?")
    for i, (path, seconds) in enumerate(files, start=1):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        rel = store.store_relpath(sha)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / rel)
        con.execute("INSERT INTO tracks (track_id, title, release_id, track_number, "
                    "rights_status, distributable) VALUES (?, ?, 1, ?, 'CC-BY-SA-3.0', true)",
                    [i, path.stem, i])
        con.execute("INSERT INTO track_artists VALUES (?, 1, 0, NULL)", [i])
        con.execute("INSERT INTO audio_files (sha256, size, store_path, storage_mode, "
                    f"duration_ms, file_key) VALUES (?, ?, ?, 'copy', ?, {key})",
                    [sha, path.stat().st_size, rel, round(seconds * 1000), sha])
        con.execute(f"INSERT INTO audio_links VALUES (?, ?, 'isrc', 1.0, now(), {key})",
                    [sha, i, sha])
        con.execute("INSERT INTO plan_rows (plan_id, track_id, rank, tier_code, status_code, "
                    f"file_key) VALUES (1, ?, ?, 0, 0, {key})", [i, i, sha])
    con.execute("INSERT INTO plans (plan_id, created_at) VALUES (1, now())")
    plan_store.write_names(con, 1, ["reencode"], ["planned_reencode"])
    return arch


def ffmpeg_run(files: list[tuple[Path, float]], parallel: int, out: Path) -> float:
    """Wall seconds for `parallel` ffmpeg processes side by side over one shared queue."""
    out.mkdir(parents=True, exist_ok=True)
    todo: queue.Queue[tuple[int, Path]] = queue.Queue()
    for i, (f, _) in enumerate(files):
        todo.put((i, f))
    failures: list[str] = []

    def worker() -> None:
        while True:
            try:
                i, f = todo.get_nowait()
            except queue.Empty:
                return
            proc = subprocess.run(
                ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(f),
                 "-c:a", "libopus", "-b:a", "75k", "-vbr", "on", str(out / f"{i}.opus")],
                capture_output=True, text=True)
            if proc.returncode:
                failures.append(f"{f}: {proc.stderr.strip()}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit("ffmpeg failed: " + "; ".join(failures[:3]))
    return time.perf_counter() - started


def soundkeep_run(files: list[tuple[Path, float]], root: Path, workers: int,
                  ray: str | None) -> tuple[float, dict[str, object]]:
    """Wall seconds of run_encode with warm workers; and its summary."""
    arch = build_archive(root, files)
    ex = make_executor(workers, ray)
    try:
        list(ex.map_unordered(warm_up, range(4 * ex.workers), lambda i, r: 0))  # start them
        summary = run_encode(arch, executor=ex)
    finally:
        ex.close()
        arch.close()
    if summary.encoded != len(files):
        sys.exit(f"soundkeep encode failed: {summary.as_dict()}")
    return summary.seconds, summary.as_dict()


def pyav_plain(files: list[tuple[Path, float]], out: Path) -> float:
    """Wall seconds of a bare decode -> libopus loop in this process, file after file."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for i, (f, _) in enumerate(files):
        with av.open(str(f)) as inp, av.open(str(out / f"{i}.opus"), "w", format="ogg") as o:
            ist = inp.streams.audio[0]
            ost = o.add_stream("libopus", rate=48000)
            ost.layout = ist.layout
            ost.bit_rate = OPUS_BPS
            for frame in inp.decode(ist):
                for packet in ost.encode(frame):
                    o.mux(packet)
            for packet in ost.encode(None):
                o.mux(packet)
    return time.perf_counter() - started


def decode_run(out: Path) -> float:
    """Wall seconds to decode ffmpeg's Opus outputs whole, as soundkeep's verification does."""
    started = time.perf_counter()
    for f in sorted(out.glob("*.opus")):
        with av.open(str(f)) as inp:
            ist = inp.streams.audio[0]
            for packet in inp.demux(ist):
                for _frame in packet.decode():
                    pass
    return time.perf_counter() - started


def extrapolate(realtime_per_core: float) -> dict[str, object]:
    """Core-hours for the reference long tail, and the cluster size for some deadlines."""
    # Files in the re-encode tier: n_o * 4.0 MB + n_r * 1.8 MB = REF_BYTES, n_o + n_r = REF_FILES.
    n_r = (REF_ORIGINAL_MB * 1e6 * REF_FILES - REF_BYTES) / (
        (REF_ORIGINAL_MB - REF_REENCODE_MB) * 1e6)
    seconds_per_file = REF_REENCODE_MB * 1e6 * 8 / OPUS_BPS  # duration at 75 kbit/s
    audio_hours = n_r * seconds_per_file / 3600
    core_hours = audio_hours / realtime_per_core
    return {
        "reencode_files": round(n_r), "avg_track_seconds": round(seconds_per_file),
        "audio_hours": round(audio_hours), "x_realtime_per_core": round(realtime_per_core, 1),
        "core_hours": round(core_hours),
        "cores_for_deadline": {f"{d}h": int(-(-core_hours // d)) for d in (24, 72, 168, 720)},
    }


def main() -> None:
    """Run every configuration once, in the same run, and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", action="store_true", help="add the sonic-pi samples")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray figure")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("the ffmpeg command is missing (Debian: apt-get install ffmpeg)")
    files = corpus(args.samples)
    audio = sum(s for _, s in files)
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True
                             ).stdout.split("\n")[0]
    work = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    try:
        t = {
            "ffmpeg_1": ffmpeg_run(files, 1, work / "ff1"),
            "opus_decode_1": decode_run(work / "ff1"),
            "soundkeep_1": soundkeep_run(files, work / "w1", 1, None)[0],
            "ffmpeg_2": ffmpeg_run(files, 2, work / "ff2"),
        }
        t["soundkeep_2"], summary = soundkeep_run(files, work / "w2", 2, None)
        if not args.no_ray:
            t["ray_2"] = soundkeep_run(files, work / "ray", 2, "auto")[0]
        t["pyav_plain_1"] = pyav_plain(files, work / "plain")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    speed = {k: round(audio / v, 1) for k, v in t.items()}
    report = {
        "corpus": {"files": len(files), "audio_seconds": round(audio, 1),
                   "sources": "singularity-music" + (" + sonic-pi-samples" if args.samples
                                                     else "")},
        "ffmpeg": version,
        "x_realtime": speed,
        "wall_seconds": {k: round(v, 2) for k, v in t.items()},
        "ratio_1_worker_vs_1_ffmpeg": round(t["ffmpeg_1"] / t["soundkeep_1"], 3),
        "ratio_2_workers_vs_2_ffmpeg": round(t["ffmpeg_2"] / t["soundkeep_2"], 3),
        "ratio_pyav_plain_vs_1_ffmpeg": round(t["ffmpeg_1"] / t["pyav_plain_1"], 3),
        # Verifying an output means decoding it whole: on one core an encoder that verifies
        # can reach at most ffmpeg / (ffmpeg + decode), even with encoding as fast as ffmpeg's.
        "ceiling_with_verification_vs_1_ffmpeg": round(
            t["ffmpeg_1"] / (t["ffmpeg_1"] + t["opus_decode_1"]), 3),
        "bytes_in": summary["bytes_in"], "bytes_out": summary["bytes_out"],
        "cores": os.cpu_count(),
        "extrapolation": extrapolate(speed["soundkeep_2"] / 2),
    }
    if "ray_2" in t:
        report["ray_vs_local_pool"] = round(t["soundkeep_2"] / t["ray_2"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
