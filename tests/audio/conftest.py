"""Fixtures for the audio tests (the helpers they use live in audiofix.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from audiofix import SINGULARITY, Catalog

from soundkeep import archive
from soundkeep.audio import scan as scanmod


@pytest.fixture
def arch(tmp_path: Path) -> Iterator[Any]:
    """A fresh archive."""
    a = archive.init(tmp_path / "arch")
    yield a
    a.close()


@pytest.fixture
def catalog(arch: Any) -> Catalog:
    """Insert catalog rows into the archive with SQL."""
    return Catalog(arch.con)


@pytest.fixture
def opts(arch: Any) -> scanmod.ScanOptions:
    """Scan options from the archive's defaults, in-process (one worker) for quick tests."""
    o = scanmod.options_from_settings(arch.settings)
    o.workers = 1
    o.fsync = False
    return o


@pytest.fixture
def run_scan(arch: Any, opts: scanmod.ScanOptions) -> Callable[..., scanmod.ScanReport]:
    """Scan directories into the archive with the test options (overridable per call)."""
    def run(*dirs: Path, **over: Any) -> scanmod.ScanReport:
        o = scanmod.ScanOptions(**{**opts.__dict__, **over})
        return scanmod.scan(arch, list(dirs), o)
    return run


@pytest.fixture
def singularity_track(tmp_path: Path) -> Path:
    """A copy of one Creative Commons Ogg track from singularity-music (tagged by its authors)."""
    src = SINGULARITY / "win" / "Apex Aleph.ogg"
    if not src.exists():
        pytest.skip("singularity-music is not installed")
    dst = tmp_path / "cc" / src.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return dst


