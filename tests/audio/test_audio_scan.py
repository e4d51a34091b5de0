"""soundkeep scan: store, dedup, quarantine, incremental rescans, idempotence, crash safety."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from audiofix import SONIC_PI, bump_mtime, cut, rows, write_audio

from soundkeep import archive
from soundkeep.audio import fingerprint as fpmod
from soundkeep.audio import scan as scanmod
from soundkeep.audio import store
from soundkeep.audio.probe import FileResult, ScanTask

Scan = Callable[..., scanmod.ScanReport]


def small_tree(root: Path) -> dict[str, Path]:
    """Good files of several formats, a duplicate, and every kind of bad file."""
    files = {
        "flac": write_audio(root / "a" / "one.flac", "flac", seconds=4.0, seed=1),
        "opus": write_audio(root / "a" / "two.opus", "opus", seconds=4.0, seed=2),
        "mp3": write_audio(root / "b" / "three.mp3", "mp3", seconds=4.0, seed=3),
        "wav": write_audio(root / "b" / "deep" / "four.wav", "wav", kind="tone", seconds=1.0),
    }
    files["dup"] = root / "b" / "copy-of-one.flac"
    shutil.copy2(files["flac"], files["dup"])
    files["half"] = cut(write_audio(root / "tmp.flac", "flac", kind="noise", seconds=3.0),
                        root / "b" / "half.flac")
    (root / "tmp.flac").unlink()
    files["empty"] = root / "b" / "empty.ogg"
    files["empty"].write_bytes(b"")
    files["text"] = root / "b" / "readme.mp3"
    files["text"].write_text("not audio\n" * 100)
    (root / "b" / "cover.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 100)  # not audio-named
    return files


def state(con: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a scan decides, without timestamps."""
    return {
        "files": rows(con, """SELECT sha256, size, store_path, storage_mode, codec, duration_ms,
                              tag_title, tag_isrc, fingerprint FROM audio_files ORDER BY 1"""),
        "paths": rows(con, "SELECT path, size, mtime_ns, sha256 FROM scan_paths ORDER BY 1"),
        "links": rows(con, "SELECT sha256, track_id, method, confidence FROM audio_links "
                           "ORDER BY 1"),
        "quarantine": rows(con, "SELECT source_file, reason FROM quarantine "
                                "WHERE stage = 'scan' ORDER BY 1"),
        "terms": rows(con, "SELECT count(*), count(DISTINCT sha256) FROM audio_fp_terms"),
        "matches": rows(con, "SELECT * FROM audio_fp_matches ORDER BY 1, 2"),
    }


def test_scan_stores_dedups_and_quarantines(arch: Any, run_scan: Scan, tmp_path: Path) -> None:
    files = small_tree(tmp_path / "music")
    before = {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in files.items()}
    rep = run_scan(tmp_path / "music", fingerprint=False)
    assert rep.found == 8 and rep.read == 8
    assert (rep.new_contents, rep.duplicates, rep.quarantined) == (4, 1, 3)
    con = arch.con
    held = rows(con, "SELECT sha256, store_path, storage_mode, size FROM audio_files")
    assert len(held) == 4
    for sha, path, mode, size in held:
        stored = arch.root / path
        assert mode == "copy" and path == store.store_relpath(sha)
        assert stored.stat().st_size == size
    # The duplicate has its own path, pointing at the one stored content.
    paths = dict(rows(con, "SELECT path, sha256 FROM scan_paths"))
    assert paths[str(files["dup"])] == paths[str(files["flac"])]
    assert paths[str(files["half"])] is None
    stored_files = [p for p in (arch.root / "store").rglob("*") if p.is_file()]
    assert len(stored_files) == 4
    q = dict(rows(con, "SELECT source_file, reason FROM quarantine WHERE stage = 'scan'"))
    assert set(q) == {str(files["half"]), str(files["empty"]), str(files["text"])}
    assert q[str(files["empty"])] == "empty file (0 bytes)"
    # Originals are never modified.
    assert {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in files.items()} == before


def test_in_place_mode_records_paths_and_stores_nothing(arch: Any, run_scan: Scan,
                                                       tmp_path: Path) -> None:
    files = small_tree(tmp_path / "music")
    run_scan(tmp_path / "music", mode="in_place", fingerprint=False)
    held = dict(rows(arch.con, "SELECT store_path, storage_mode FROM audio_files"))
    # One content, two paths: it lives at the first path in sort order.
    assert str(files["flac"]) in held and str(files["dup"]) not in held
    assert set(held.values()) == {"in_place"}
    assert not (arch.root / "store").exists() or not any(
        p.is_file() for p in (arch.root / "store").rglob("*"))


def test_link_mode_hard_links(arch: Any, run_scan: Scan, tmp_path: Path) -> None:
    src = write_audio(tmp_path / "music" / "x.flac", "flac", seconds=1.0)
    run_scan(tmp_path / "music", mode="link", fingerprint=False)
    (path,) = rows(arch.con, "SELECT store_path FROM audio_files")[0]
    assert (arch.root / path).stat().st_ino == src.stat().st_ino


def test_rescan_only_stats_unchanged_files_and_rereads_changed_ones(
        arch: Any, run_scan: Scan, tmp_path: Path) -> None:
    files = small_tree(tmp_path / "music")
    first = run_scan(tmp_path / "music", fingerprint=False)
    snap = state(arch.con)
    again = run_scan(tmp_path / "music", fingerprint=False)
    assert (again.found, again.read, again.unchanged) == (8, 0, 8)
    assert state(arch.con) == snap  # idempotent
    # Change one file's content, fix a quarantined one, delete one: only those are read.
    write_audio(files["opus"], "opus", seconds=2.5, seed=9)
    bump_mtime(files["opus"])
    write_audio(files["half"], "flac", seconds=1.0, seed=4)
    bump_mtime(files["half"])
    files["mp3"].unlink()
    third = run_scan(tmp_path / "music", fingerprint=False)
    assert (third.read, third.unchanged, third.gone) == (2, 5, 1)
    assert first.read == 8
    paths = dict(rows(arch.con, "SELECT path, sha256 FROM scan_paths"))
    assert str(files["mp3"]) not in paths
    assert paths[str(files["half"])] is not None
    q = {r[0] for r in rows(arch.con, "SELECT source_file FROM quarantine")}
    assert str(files["half"]) not in q
    # Copies stay in the store: the old opus content and the deleted mp3 are still held.
    assert rows(arch.con, "SELECT count(*) FROM audio_files")[0][0] == 6


def test_in_place_holding_follows_its_paths(arch: Any, run_scan: Scan, tmp_path: Path) -> None:
    files = small_tree(tmp_path / "music")
    run_scan(tmp_path / "music", mode="in_place", fingerprint=False)
    sha = rows(arch.con, "SELECT sha256 FROM scan_paths WHERE path = ?",
               [str(files["flac"])])[0][0]
    files["flac"].unlink()  # the first path of the shared content
    run_scan(tmp_path / "music", mode="in_place", fingerprint=False)
    assert rows(arch.con, "SELECT store_path FROM audio_files WHERE sha256 = ?",
                [sha]) == [(str(files["dup"]),)]
    files["dup"].unlink()  # no path holds it any more: no longer held
    run_scan(tmp_path / "music", mode="in_place", fingerprint=False)
    assert rows(arch.con, "SELECT count(*) FROM audio_files WHERE sha256 = ?", [sha]) == [(0,)]


def test_scan_errors_are_one_line_user_errors(arch: Any, run_scan: Scan, tmp_path: Path) -> None:
    from soundkeep.errors import ConfigError, InputError

    with pytest.raises(InputError, match="no such directory"):
        run_scan(tmp_path / "missing")
    with pytest.raises(ConfigError, match="unknown storage mode"):
        run_scan(tmp_path, mode="move")


def test_missing_chromaprint_warns_once_and_skips_fingerprints(
        arch: Any, run_scan: Scan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_audio(tmp_path / "m" / "a.flac", "flac", seconds=1.0, seed=1)
    write_audio(tmp_path / "m" / "b.flac", "flac", seconds=1.0, seed=2)
    monkeypatch.setattr(fpmod, "available", lambda: False)
    rep = run_scan(tmp_path / "m", fingerprint=True)
    assert rep.warnings == [fpmod.MISSING_WARNING]
    assert rows(arch.con, "SELECT count(*), count(fingerprint) FROM audio_files") == [(2, 0)]


@pytest.mark.skipif(not fpmod.available(), reason="libchromaprint is not installed")
def test_pool_of_two_workers_matches_one_worker(tmp_path: Path) -> None:
    small_tree(tmp_path / "music")
    states = []
    for workers in (1, 2):
        a = archive.init(tmp_path / f"arch{workers}")
        o = scanmod.options_from_settings(a.settings)
        o.workers, o.fsync = workers, False
        scanmod.scan(a, [tmp_path / "music"], o)
        states.append(state(a.con))
        a.close()
    assert states[0] == states[1]
    assert states[0]["terms"][0][1] >= 3  # fingerprints were indexed


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from soundkeep.cli import main; main()", *args]


@pytest.mark.skipif(not SONIC_PI.exists(), reason="sonic-pi-samples is not installed")
def test_killed_scan_resumes_to_the_same_state(tmp_path: Path) -> None:
    # Real CC0 audio plus broken files; the scan is killed (SIGKILL, workers too) once some
    # batches are in, then run again: the end state equals an uninterrupted scan's.
    music = tmp_path / "music"
    music.mkdir()
    for p in sorted(SONIC_PI.glob("*.flac"))[:60]:
        os.symlink(p, music / p.name)
    cut(SONIC_PI / sorted(p.name for p in SONIC_PI.glob("*.flac"))[-1], music / "cut.flac")
    (music / "zero.flac").write_bytes(b"")
    results = []
    for name, kill in (("killed", True), ("whole", False)):
        root = tmp_path / name
        archive.init(root).close()
        (root / "soundkeep.toml").write_text("[scan]\nbatch_files = 4\nfsync = false\n")
        cmd = _cli("scan", str(music), "-a", str(root), "--json", "-j", "2")
        if kill:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if sum(1 for p in (root / "store").rglob("*") if p.is_file()) >= 12:
                    break
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL, "the scan finished before it was killed"
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        a = archive.open_archive(root)
        s = state(a.con)
        a.close()
        results.append((s, sorted(p.name for p in (root / "store").rglob("*") if p.is_file())))
        assert not any((root / "store" / ".tmp").glob("*.part"))
    assert results[0] == results[1]
    assert len(results[1][0]["files"]) == 60
    assert len(results[1][0]["quarantine"]) == 2


def crash_on_marked(tasks: list[ScanTask]) -> list[FileResult]:
    """A worker that dies (as on a decoder crash) when a task's file is named BOOM."""
    if any(Path(t.path).name.startswith("BOOM") for t in tasks):
        os._exit(1)
    return [FileResult(t.path, t.size, t.mtime_ns, sha256="0" * 64) for t in tasks]


@pytest.mark.parametrize("start", ["default", "spawn"])
def test_worker_crash_quarantines_only_the_file_that_caused_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str) -> None:
    # Workers are forked on Linux; spawned workers (other systems) behave the same.
    if start == "spawn":
        monkeypatch.setattr(scanmod, "_mp_context",
                            lambda: multiprocessing.get_context("spawn"))
    tasks = [ScanTask(str(tmp_path / f"{'BOOM' if i == 7 else 'f'}{i}.flac"), 1, 1,
                      "in_place", str(tmp_path), False) for i in range(20)]
    results = {r.path: r for r in scanmod._run(tasks, 2, crash_on_marked)}
    assert len(results) == 20
    bad = [r for r in results.values() if r.status == "quarantined"]
    assert [r.path for r in bad] == [tasks[7].path]
    assert bad[0].reason == "the decoder crashed on this file"


def test_odd_names_nested_roots_and_the_store_itself(arch: Any, run_scan: Scan,
                                                     tmp_path: Path) -> None:
    music = tmp_path / "music"
    write_audio(music / "sub" / "a.flac", "flac", seconds=1.0)
    raw = os.fsencode(str(music)) + b"/caf\xe9.flac"  # a Latin-1 name: not UTF-8
    with open(raw, "wb") as fh:
        fh.write((music / "sub" / "a.flac").read_bytes())
    rep = run_scan(music, music / "sub", fingerprint=False)  # nested roots: each path once
    assert rep.found == 1 and rep.quarantined == 1
    assert rows(arch.con, "SELECT count(*) FROM scan_paths") == [(1,)]
    (reason,) = rows(arch.con, "SELECT reason FROM quarantine WHERE source_file LIKE '%caf%'")[0]
    assert "not valid UTF-8" in reason
    # Scanning a tree that holds the archive never scans the archive's own store.
    rep = run_scan(tmp_path, fingerprint=False)
    assert rep.found == 1
    assert rows(arch.con, "SELECT count(*) FROM quarantine WHERE stage = 'scan'") == [(1,)]


def test_an_empty_root_keeps_what_was_scanned_there(arch: Any, run_scan: Scan,
                                                    tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    write_audio(drive / "a.flac", "flac", seconds=1.0)
    run_scan(drive, mode="in_place", fingerprint=False)
    hidden = tmp_path / "elsewhere"
    (drive / "a.flac").rename(hidden)  # as if the drive were unmounted: the mount point is empty
    rep = run_scan(drive, mode="in_place", fingerprint=False)
    assert rep.gone == 0 and "is a drive unmounted?" in rep.warnings[0]
    assert rows(arch.con, "SELECT count(*) FROM audio_files") == [(1,)]
    assert scanmod._count_under([str(drive / "a"), str(drive / "b" / "c"), str(tmp_path / "x")],
                                drive) == 2


def test_tasks_are_sent_largest_first_in_bounded_chunks(tmp_path: Path) -> None:
    sizes = [5, 3 << 20, 7, 9 << 20, 1 << 20] + [100] * 40
    tasks = [ScanTask(str(tmp_path / f"f{i}"), s, 1, "in_place", str(tmp_path), False)
             for i, s in enumerate(sizes)]
    chunks = list(scanmod._chunks(tasks))
    flat = [t.size for c in chunks for t in c]
    assert flat == sorted(sizes, reverse=True)
    assert all(len(c) <= scanmod.TASK_FILES for c in chunks)
    # A chunk closes as soon as it reaches TASK_BYTES: no chunk holds more than one big file.
    assert all(sum(t.size for t in c[:-1]) < scanmod.TASK_BYTES for c in chunks)
