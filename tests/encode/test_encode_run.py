"""`soundkeep encode` on whole archives: the plan carried out, journaled, resumable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from encfix import Track, decode, run_cli, sha256, store_listing

from soundkeep import archive
from soundkeep.audio.restore import apply_patch
from soundkeep.audio.tags import read_tags

SUMMARY_KEYS = {"encoded", "kept_original", "failed", "skipped", "bytes_in", "bytes_out",
                "realtime_factor", "not_held", "planned", "files_per_second", "bytes_saved"}


def journal(root: Path) -> dict[int, tuple]:
    with archive.open_archive(root) as arch:
        rows = arch.con.execute("""
            SELECT track_id, status, reason, output_sha256, output_path, patch_path,
                   source_sha256, duration_ms, source_duration_ms
            FROM encode_journal ORDER BY track_id, finished_at""").fetchall()
    return {r[0]: r[1:] for r in rows}


def test_encode_carries_out_the_plan(make_archive: Callable[..., archive.Archive],
                                     mixed_tracks: list[Track]) -> None:
    arch = make_archive(mixed_tracks)
    root = arch.root
    arch.close()
    before = store_listing(root)
    out = json.loads(run_cli(["encode", "-a", str(root), "--json", "--workers", "2"]).stdout)
    assert set(out) >= SUMMARY_KEYS
    assert (out["encoded"], out["kept_original"], out["failed"]) == (3, 2, 1)
    assert (out["planned"], out["not_held"], out["skipped"]) == (7, 1, 0)
    assert out["failures"] == {"decode_error": 1}
    assert out["bytes_in"] > out["bytes_out"] > 0 and out["realtime_factor"] > 0

    rows = journal(root)
    assert set(rows) == {1, 2, 3, 4, 5, 8}
    assert rows[4][0] == "failed" and rows[4][1].startswith("decode_error")
    assert rows[4][2] is None  # a failed file keeps its original only
    by_id = {t.track_id: t for t in mixed_tracks}
    for tid, (status, _, out_sha, out_path, patch_path, src_sha, dur, src_dur) in rows.items():
        if status == "failed":
            continue
        assert (root / out_path).is_file() and sha256(root / out_path) == out_sha
        assert src_sha == sha256(by_id[tid].source)  # type: ignore[arg-type]
        assert abs(dur - src_dur) <= 50
        seconds, rate, _, _ = decode(root / out_path)
        assert abs(seconds * 1000 - src_dur) <= 50
        tags = read_tags(root / out_path)
        assert tags.first("TITLE") == by_id[tid].title
        assert tags.fields["ARTIST"] == list(by_id[tid].artists)
        assert tags.first("ALBUM") == "Test Album" and tags.first("BARCODE") == "012345678905"
        assert tags.first("DATE") == "2012-12-15" and tags.first("SOUNDKEEP_TRACK_ID") == str(tid)
        assert tags.first("LICENSE") == by_id[tid].rights
        if status == "encoded":
            assert rate == 48000 and patch_path is None
        else:  # original tier: the original comes back byte for byte
            restored = apply_patch((root / out_path).read_bytes(),
                                   (root / patch_path).read_bytes())
            assert restored == by_id[tid].source.read_bytes()  # type: ignore[union-attr]
    assert read_tags(root / rows[1][3]).first("ISRC") == "USRC17607839"
    # The originals are still in the store, unchanged; nothing is left in its scratch space.
    after = store_listing(root)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not any(k.startswith(".tmp") for k in after)
    with archive.open_archive(root) as a:
        assert a.con.execute("SELECT count(*) FROM encode_outputs").fetchone() == (5,)

    # Run again: nothing to do, nothing changes.
    again = json.loads(run_cli(["encode", "-a", str(root), "--json"]).stdout)
    assert (again["encoded"], again["kept_original"], again["failed"]) == (0, 0, 0)
    assert again["skipped"] == 6
    assert store_listing(root) == after and journal(root) == rows

    # --retry-failed tries the failed one again (and it fails again, for the same reason).
    retry = json.loads(run_cli(["encode", "-a", str(root), "--json", "--retry-failed",
                                "--workers", "1"]).stdout)
    assert (retry["failed"], retry["encoded"], retry["skipped"]) == (1, 0, 5)


def test_dry_run_changes_nothing(make_archive: Callable[..., archive.Archive],
                                 mixed_tracks: list[Track]) -> None:
    arch = make_archive(mixed_tracks)
    root = arch.root
    arch.close()
    before = store_listing(root)
    out = json.loads(run_cli(["encode", "-a", str(root), "--dry-run", "--json",
                              "--workers", "2"]).stdout)
    assert out["dry_run"] is True
    assert (out["to_encode"], out["to_keep_original"], out["not_held"]) == (4, 2, 1)
    assert out["expected_bytes_out"] == 6 * 1000  # est_bytes of the plan rows
    assert out["bytes_in"] == sum(
        t.source.stat().st_size for t in mixed_tracks if t.source and t.tier != "metadata_only")
    assert out["audio_seconds"] > 200  # Awakening.ogg alone is 208 s
    assert set(out["calibration"]) == {"opus", "original"}
    assert out["calibration"]["original"]["realtime_factor"] > 1
    assert out["estimated_seconds"] is not None and out["estimated_seconds"] > 0
    assert store_listing(root) == before
    with archive.open_archive(root) as a:
        assert a.con.execute("SELECT count(*) FROM encode_journal").fetchone() == (0,)
    text = run_cli(["encode", "-a", str(root), "--dry-run"]).stdout
    assert "would re-encode 4 and keep 2 originals" in text and "estimated time" in text


def test_limit_takes_the_most_important_first(make_archive: Callable[..., archive.Archive],
                                              mixed_tracks: list[Track]) -> None:
    arch = make_archive([t for t in mixed_tracks if t.track_id in (1, 2, 8)])
    root = arch.root
    arch.close()
    out = json.loads(run_cli(["encode", "-a", str(root), "--json", "--limit", "2",
                              "--workers", "1"]).stdout)
    assert out["encoded"] == 2 and set(journal(root)) == {1, 2}
    rest = json.loads(run_cli(["encode", "-a", str(root), "--json"]).stdout)
    assert rest["encoded"] == 1 and rest["skipped"] == 2 and set(journal(root)) == {1, 2, 8}


def test_user_errors_are_one_line(tmp_path: Path, make_archive: Callable[..., archive.Archive],
                                  mixed_tracks: list[Track]) -> None:
    empty = archive.init(tmp_path / "empty")
    empty.close()
    proc = run_cli(["encode", "-a", str(tmp_path / "empty")], check=False)
    assert proc.returncode == 2 and "no plan" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

    arch = make_archive(mixed_tracks[:2])
    root = arch.root
    arch.close()
    cfg = root / "soundkeep.toml"
    cfg.write_text(cfg.read_text() + '\n[tiers.reencode]\ncodec = "aac"\n'
                   'bitrate_kbps = 96\nweight = 0.9\n' if "[tiers.reencode]" not in
                   cfg.read_text() else cfg.read_text().replace('codec = "opus"',
                                                                'codec = "aac"'))
    proc = run_cli(["encode", "-a", str(root)], check=False)
    assert proc.returncode == 2 and "tiers.reencode.codec" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli(["encode", "-a", str(tmp_path / "empty"), "--workers", "0"], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


class DyingExecutor:
    """Every task loses its worker (as when the workers cannot start at all)."""

    name, workers = "dying:1", 1

    def map_unordered(self, fn, items, lost):  # type: ignore[no-untyped-def]
        for item in items:
            yield lost(item, "worker_crashed: the task killed its worker 3 times")

    def close(self) -> None:
        pass


def test_workers_that_keep_dying_stop_the_run_and_are_retried_later(
        make_archive: Callable[..., archive.Archive], tmp_path: Path) -> None:
    from encfix import tone_file

    from soundkeep.audio.encode_run import WorkerError, run_encode

    tracks = [Track(i, f"T{i}", "reencode", tone_file(tmp_path / f"{i}.flac", seconds=0.2,
                                                      freq=200.0 + 50 * i))
              for i in range(1, 10)]
    arch = make_archive(tracks)
    with pytest.raises(WorkerError, match="in a row lost their worker"):
        run_encode(arch, executor=DyingExecutor())  # type: ignore[arg-type]
    # The lost tasks were journaled, but a dead worker says nothing about the file: not final.
    assert arch.con.execute("SELECT count(*) FROM encode_journal").fetchone() == (6,)
    summary = run_encode(arch, workers=1)
    assert summary.encoded == 9 and summary.skipped == 0


def test_a_planned_file_no_longer_linked_to_its_track_is_not_encoded(
        make_archive: Callable[..., archive.Archive], mixed_tracks: list[Track]) -> None:
    """The plan names a file by its key among the track's links: once the link is gone (the
    file relinked or found ambiguous), the track counts as planned but not held."""
    arch = make_archive([t for t in mixed_tracks if t.track_id in (1, 2, 8)])
    root = arch.root
    assert arch.con.execute("SELECT count(*) FROM current_plan WHERE file_key IS NOT NULL"
                            ).fetchone() == (3,)
    arch.con.execute("DELETE FROM audio_links WHERE track_id = 2")
    arch.close()
    out = json.loads(run_cli(["encode", "-a", str(root), "--dry-run", "--json"]).stdout)
    assert (out["planned"], out["to_encode"], out["not_held"]) == (3, 2, 1)
    done = json.loads(run_cli(["encode", "-a", str(root), "--json", "--workers", "1"]).stdout)
    assert (done["encoded"], done["not_held"]) == (2, 1) and set(journal(root)) == {1, 8}
