"""Fixtures for the encode tests (the helpers they use live in encfix.py).

Archives are built by inserting catalog, holdings and plan rows directly with SQL, and by
placing real files in the store layout store/ab/cd/<sha256>: generated tones, the CC0 FLAC
samples of sonic-pi-samples and the CC BY-SA Ogg tracks of singularity-music.
"""

from __future__ import annotations

import os

# One core per worker: set before numpy (and its BLAS) load in this process.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from encfix import SINGULARITY, SONIC_PI, Release, Track, build_archive, tone_file

from soundkeep import archive


@pytest.fixture
def make_archive(tmp_path: Path) -> Iterator[Callable[..., archive.Archive]]:
    """Build an archive from Track rows: make_archive(tracks, name='arch', release=None)."""
    opened: list[archive.Archive] = []

    def make(tracks: list[Track], name: str = "arch",
             release: Release | None = None) -> archive.Archive:
        arch = build_archive(tmp_path / name, tracks, release)
        opened.append(arch)
        return arch

    yield make
    for a in opened:
        a.close()


@pytest.fixture
def mixed_tracks(tmp_path: Path) -> list[Track]:
    """A small real-world mix: generated tones, two CC0 FLAC samples, one CC Ogg track (kept
    as original), one corrupt file, a track planned without a file, and a metadata-only one."""
    src = tmp_path / "src"
    corrupt = src / "corrupt.flac"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    good = tone_file(src / "good.flac", seconds=1.5).read_bytes()
    # A FLAC header followed by garbage: it opens, then fails to decode.
    corrupt.write_bytes(good[:8192] + os.urandom(40_000))
    return [
        Track(1, "Tone Stereo", "reencode", tone_file(src / "t1.flac", seconds=2.0),
              isrc="USRC17607839"),
        Track(2, "Choir", "reencode", SONIC_PI / "ambi_choir.flac", artists=("Sonic Pi", "Sam")),
        Track(3, "Awakening", "original", SINGULARITY / "Awakening.ogg", artists=("Maxstack",),
              rights="CC-BY-SA-3.0"),
        Track(4, "Broken", "reencode", corrupt),
        Track(5, "Piano", "original", SONIC_PI / "ambi_piano.flac"),
        Track(6, "Not Held", "reencode", None),
        Track(7, "Only Metadata", "metadata_only", None),
        Track(8, "Tone Mono", "reencode", tone_file(src / "t8.wav", seconds=1.0, fmt="wav",
                                                      channels=1)),
    ]
