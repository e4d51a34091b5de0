"""Helpers for the encode tests: generated audio (PyAV), the Debian CC audio, and archives
built by inserting catalog, holdings and plan rows with plain SQL."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from soundkeep import archive
from soundkeep.audio.schema import file_key_sql
from soundkeep.plan import store

SINGULARITY = Path("/usr/share/games/singularity/music")  # CC BY-SA 3.0 Ogg Vorbis, tagged
SONIC_PI = Path("/usr/share/sonic-pi/samples")  # CC0 FLAC samples

# name -> (container format, codec, default rate)
FORMATS: dict[str, tuple[str, str, int]] = {
    "flac": ("flac", "flac", 44100),
    "ogg": ("ogg", "vorbis", 44100),
    "opus": ("ogg", "libopus", 48000),
    "mp3": ("mp3", "libmp3lame", 44100),
    "m4a": ("ipod", "aac", 44100),
    "wav": ("wav", "pcm_s16le", 44100),
}

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201ffa5b5e00000000049454e44ae426082")


def sine(seconds: float, rate: int, channels: int = 2, dbfs: float = -20.0,
         freq: float = 1000.0) -> np.ndarray:
    """A sine of peak level dbfs on every channel, shaped (channels, samples), float32."""
    t = np.arange(round(seconds * rate)) / rate
    mono = (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.tile(mono, (channels, 1))


def write_audio(path: Path, data: np.ndarray, rate: int, fmt: str = "flac",
                layout: str | None = None) -> Path:
    """Encode samples (channels, n) with PyAV into one of FORMATS."""
    container, codec, _ = FORMATS[fmt]
    layout = layout or {1: "mono", 2: "stereo", 6: "5.1"}[data.shape[0]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = layout
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "-2"}
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=rate)
        for i in range(0, data.shape[1], 4096):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, i:i + 4096]),
                                               format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = i
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tone_file(path: Path, seconds: float = 2.0, fmt: str = "flac", rate: int | None = None,
              channels: int = 2, dbfs: float = -20.0, freq: float = 1000.0) -> Path:
    """A sine written to a file."""
    rate = rate or FORMATS[fmt][2]
    return write_audio(path, sine(seconds, rate, channels, dbfs, freq), rate, fmt)


def decode(path: Path) -> tuple[float, int, int, np.ndarray]:
    """Decode a whole file: (seconds, rate, channels, fltp samples)."""
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        rs = av.AudioResampler(format="fltp")
        chunks = []
        for frame in c.decode(st):
            for f in rs.resample(frame):
                chunks.append(f.to_ndarray())
        rate, channels = st.codec_context.sample_rate, st.codec_context.channels
    data = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), np.float32)
    return data.shape[1] / rate, rate, channels, data


def probe(path: Path) -> tuple[str | None, int | None]:
    """(codec, duration_ms) as the holdings scan would record them; (None, None) if unreadable."""
    try:
        with av.open(str(path)) as c:
            st = c.streams.audio[0]
            dur = c.duration / 1000 if c.duration else None
            return st.codec_context.name, None if dur is None else round(dur)
    except (av.FFmpegError, IndexError):
        return None, None


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The tiers a test plan may give a track (their status: planned_<tier>).
PLAN_TIERS = ["original", "reencode", "metadata_only", "low"]


@dataclass
class Track:
    """One catalog track for a test archive; `source` is the file held for it (or None)."""

    track_id: int
    title: str
    tier: str = "reencode"
    source: Path | None = None
    artists: tuple[str, ...] = ("Test Artist",)
    isrc: str | None = None
    track_number: int | None = 1
    disc_number: int | None = 1
    rights: str = "CC0-1.0"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Release:
    """The one release of a test archive."""

    release_id: int = 900
    title: str = "Test Album"
    upc: str | None = "012345678905"
    label: str | None = "Test Label"
    date: str | None = "2012-12-15"
    precision: str = "day"
    total_tracks: int | None = 12
    artists: tuple[str, ...] = ("Album Artist",)


def build_archive(root: Path, tracks: list[Track], release: Release | None = None
                  ) -> archive.Archive:
    """An archive with these tracks in the catalog, their files in the store and linked, and a
    plan (one row per track at its tier); files are copied into store/ab/cd/<sha256>."""
    release = release or Release()
    arch = archive.init(root)
    con = arch.con
    names = sorted({n for t in tracks for n in t.artists} | set(release.artists))
    ids = {n: i + 1 for i, n in enumerate(names)}
    con.executemany("INSERT INTO artists (artist_id, name) VALUES (?, ?)",
                    [(i, n) for n, i in ids.items()])
    con.execute("""INSERT INTO releases (release_id, title, upc, label, copyright_p,
                   release_date, release_date_precision, total_tracks)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [release.release_id, release.title, release.upc, release.label,
                 "(P) 2012 Test", release.date, release.precision, release.total_tracks])
    con.executemany("INSERT INTO release_artists VALUES (?, ?, ?)",
                    [(release.release_id, ids[n], i) for i, n in enumerate(release.artists)])
    key = file_key_sql("?")
    for rank, t in enumerate(tracks, start=1):
        con.execute("""INSERT INTO tracks (track_id, title, release_id, disc_number,
                       track_number, isrc, rights_status, distributable)
                       VALUES (?, ?, ?, ?, ?, ?, ?, true)""",
                    [t.track_id, t.title, release.release_id, t.disc_number, t.track_number,
                     t.isrc, t.rights])
        con.executemany("INSERT INTO track_artists VALUES (?, ?, ?, NULL)",
                        [(t.track_id, ids[n], i) for i, n in enumerate(t.artists)])
        sha = None
        if t.source is not None:
            sha = sha256(t.source)
            rel = f"store/{sha[:2]}/{sha[2:4]}/{sha}"
            dest = root / rel
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(t.source, dest)
            codec, duration_ms = probe(dest)
            con.execute(f"""INSERT INTO audio_files (sha256, size, store_path, storage_mode,
                            codec, duration_ms, file_key) SELECT ?, ?, ?, 'copy', ?, ?, {key}
                            WHERE NOT EXISTS (SELECT 1 FROM audio_files WHERE sha256 = ?)""",
                        [sha, dest.stat().st_size, rel, codec, duration_ms, sha, sha])
            con.execute(f"INSERT INTO audio_links VALUES (?, ?, 'isrc', 1.0, now(), {key})",
                        [sha, t.track_id, sha])
        code = PLAN_TIERS.index(t.tier)
        con.execute(f"""INSERT INTO plan_rows (plan_id, track_id, rank, tier_code, status_code,
                        est_bytes, file_key) VALUES (1, ?, ?, ?, ?, ?, {key})""",
                    [t.track_id, rank, code, code, 1000, sha])
    con.execute("INSERT INTO plans (plan_id, created_at) VALUES (1, now())")
    store.write_names(con, 1, PLAN_TIERS, [f"planned_{t}" for t in PLAN_TIERS])
    return arch


def store_listing(root: Path) -> dict[str, str]:
    """Every file under store/ (relative path -> sha256 of its bytes)."""
    base = root / "store"
    return {str(p.relative_to(base)): sha256(p) for p in sorted(base.rglob("*")) if p.is_file()}


def run_cli(args: list[str], check: bool = True, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    """Run the soundkeep command in a subprocess (as a user would)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", "from soundkeep.cli import main; main()",
                           *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"soundkeep {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc
