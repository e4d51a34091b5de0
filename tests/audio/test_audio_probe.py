"""probe_file: stream facts, exact durations, tags, sha256, integrity checks, fingerprints."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import mutagen
import pytest
from audiofix import SINGULARITY, SONIC_PI, cut, write_audio, write_tags
from hypothesis import given, settings
from hypothesis import strategies as st

from soundkeep.audio import fingerprint as fpmod
from soundkeep.audio import probe as probe_mod
from soundkeep.audio import store
from soundkeep.audio.probe import FileResult, ScanTask, probe_file, probe_many

MBID = "0f0e9a2a-4a5e-4c6c-9f6c-2b1e8d1c7a11"
CODECS = {"flac": "flac", "ogg": "vorbis", "opus": "opus", "mp3": "mp3", "m4a": "aac",
          "wav": "pcm_s16le"}


def probe(path: Path, root: Path, *, mode: str = "in_place", fingerprint: bool = False
          ) -> FileResult:
    st_ = path.stat()
    return probe_file(ScanTask(str(path), st_.st_size, st_.st_mtime_ns, mode, str(root),
                               fingerprint, fsync=False))


@pytest.mark.parametrize("fmt", sorted(CODECS))
def test_each_format_probed_with_exact_duration_tags_and_hash(tmp_path: Path, fmt: str) -> None:
    path = write_audio(tmp_path / f"song.{fmt}", fmt, seconds=3.0)
    write_tags(path, title="Sóng", artist=["Band", "Guest"], album="Album",
               isrc="us-abc-12-34567", mbid=MBID.upper(), track=3, disc=2)
    r = probe(path, tmp_path)
    assert r.status == "ok", r.reason
    assert r.codec == CODECS[fmt]
    assert r.sample_rate == (48000 if fmt == "opus" else 44100)
    assert r.channels == 2
    # Exact to a few milliseconds (codec padding is not audio).
    assert abs(r.duration_ms - 3000) <= 30, r.duration_ms
    assert r.bitrate and r.bitrate > 0
    assert r.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r.tag_title == "Sóng"
    assert r.tag_artists == ["Band", "Guest"]
    assert r.tag_album == "Album"
    assert r.tag_isrc == "us-abc-12-34567"  # normalised when written to the catalog
    assert r.tag_mb_recording_id == MBID
    assert r.tag_track_number == 3
    assert r.tag_disc_number == 2


@pytest.mark.parametrize("fmt", sorted(CODECS))
def test_file_cut_in_half_is_refused(tmp_path: Path, fmt: str) -> None:
    whole = write_audio(tmp_path / f"whole.{fmt}", fmt, seconds=6.0)
    half = cut(whole, tmp_path / f"half.{fmt}")
    r = probe(half, tmp_path)
    assert r.status == "quarantined"
    assert r.sha256 is None
    assert any(w in (r.reason or "") for w in ("truncated", "not a readable", "unreadable")), \
        r.reason


def test_flac_missing_its_last_bytes_is_refused(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "whole.flac", "flac", kind="noise", seconds=4.0)
    short = tmp_path / "short.flac"
    short.write_bytes(whole.read_bytes()[:-100])
    r = probe(short, tmp_path)
    assert r.status == "quarantined"
    assert "corrupt" in (r.reason or "") or "truncated" in (r.reason or "")


def test_empty_and_non_audio_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("these are liner notes, not audio\n" * 50)
    r1, r2 = probe(empty, tmp_path), probe(text, tmp_path)
    assert (r1.status, r1.reason) == ("quarantined", "empty file (0 bytes)")
    assert r2.status == "quarantined"
    assert "not a readable audio file" in (r2.reason or "")


def test_wrong_extension_is_read_by_content(tmp_path: Path) -> None:
    flac = write_audio(tmp_path / "real.flac", "flac", seconds=2.0)
    write_tags(flac, title="Named wrong", artist="X")
    wrong = tmp_path / "looks_like.mp3"
    flac.rename(wrong)
    r = probe(wrong, tmp_path)
    assert r.status == "ok", r.reason
    assert (r.container, r.codec) == ("flac", "flac")
    assert r.tag_title == "Named wrong"


def test_copy_mode_stores_read_only_copy_and_leaves_original_alone(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "in" / "a.flac", "flac", seconds=2.0)
    before = (src.read_bytes(), src.stat().st_mtime_ns, src.stat().st_mode)
    root = tmp_path / "arch"
    r = probe(src, root, mode="copy")
    assert r.status == "ok" and r.stored
    stored = root / store.store_relpath(r.sha256 or "")
    assert stored.read_bytes() == before[0]
    assert not os.access(stored, os.W_OK) or os.geteuid() == 0
    assert stored.stat().st_mode & 0o777 == 0o444
    assert (src.read_bytes(), src.stat().st_mtime_ns, src.stat().st_mode) == before
    assert list((root / "store" / ".tmp").iterdir()) == []
    again = probe(src, root, mode="copy")  # same content: stored once
    assert again.sha256 == r.sha256 and not again.stored
    assert list((root / "store" / ".tmp").iterdir()) == []


def test_quarantined_copy_leaves_no_temporary_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS" + os.urandom(5000))
    root = tmp_path / "arch"
    r = probe(bad, root, mode="copy")
    assert r.status == "quarantined"
    tmp = root / "store" / ".tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def test_link_mode_shares_the_inode(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "in" / "a.opus", "opus", seconds=2.0)
    root = tmp_path / "arch"
    r = probe(src, root, mode="link")
    stored = root / store.store_relpath(r.sha256 or "")
    assert stored.stat().st_ino == src.stat().st_ino
    assert src.stat().st_mode & 0o777 != 0o444  # the original's mode is not touched


def test_file_changed_while_read_is_not_recorded(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "a.flac", "flac", seconds=2.0)
    st_ = src.stat()
    task = ScanTask(str(src), st_.st_size, st_.st_mtime_ns - 1, "in_place", str(tmp_path), False)
    assert probe_file(task).status == "changed"


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=5000),
       ops=st.lists(st.tuples(st.integers(0, 6000), st.integers(0, 3000)), max_size=12),
       whole=st.booleans())
def test_readers_hash_exactly_whatever_the_access_pattern(
        tmp_path_factory: pytest.TempPathFactory, data: bytes, ops: list[tuple[int, int]],
        whole: bool) -> None:
    path = tmp_path_factory.mktemp("h") / "f.bin"
    path.write_bytes(data)
    tee_path = path.with_suffix(".copy")
    with open(tee_path, "wb") as tee:
        r = (store.WholeFileReader if whole else store.HashingReader)(str(path), tee)
        for pos, n in ops:
            r.seek(pos)
            assert r.read(n) == data[pos:pos + n]
            assert r.pread(n, pos) == data[pos:pos + n]
        sha, size = r.finish()
        r.close()
    assert sha == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert tee_path.read_bytes() == data


def test_real_cc_ogg_track(tmp_path: Path) -> None:
    src = SINGULARITY / "Nebula.ogg"
    if not src.exists():
        pytest.skip("singularity-music is not installed")
    r = probe(src, tmp_path)
    assert r.status == "ok", r.reason
    assert (r.container, r.codec, r.sample_rate) == ("ogg", "vorbis", 48000)
    assert r.tag_title == "Nebula" and r.tag_artists == ["Maxstack"]
    assert r.tag_album == "Endgame: Singularity (Advanced Research)"
    # The last Ogg page's granule position is the exact sample count.
    assert r.duration_ms == round(mutagen.File(src).info.length * 1000)


def test_real_cc0_flac_samples_have_streaminfo_exact_durations(tmp_path: Path) -> None:
    samples = sorted(SONIC_PI.glob("*.flac"))[:12] if SONIC_PI.exists() else []
    if not samples:
        pytest.skip("sonic-pi-samples is not installed")
    for s in samples:
        r = probe(s, tmp_path)
        info = mutagen.File(s).info
        assert r.status == "ok", (s, r.reason)
        assert r.duration_ms == round(info.total_samples / info.sample_rate * 1000), s
        assert r.sha256 == hashlib.sha256(s.read_bytes()).hexdigest()


@pytest.mark.skipif(not fpmod.available(), reason="libchromaprint is not installed")
def test_fingerprint_is_computed_and_matches_across_codecs(tmp_path: Path) -> None:
    a = write_audio(tmp_path / "a.flac", "flac", seconds=12.0, seed=5)
    b = write_audio(tmp_path / "b.mp3", "mp3", seconds=12.0, seed=5, bitrate=96000)
    c = write_audio(tmp_path / "c.flac", "flac", seconds=12.0, seed=6)
    ra, rb, rc = (probe(p, tmp_path, fingerprint=True) for p in (a, b, c))
    assert ra.fingerprint and ra.fingerprint_raw and len(ra.fingerprint_raw) > 50
    assert ra.sha256 == hashlib.sha256(a.read_bytes()).hexdigest()  # decoding fed the hash

    def ber(x: list[int], y: list[int]) -> float:
        n = min(len(x), len(y))
        return sum(bin(p ^ q).count("1") for p, q in zip(x[:n], y[:n], strict=True)) / (32 * n)

    assert ber(ra.fingerprint_raw, rb.fingerprint_raw or []) < 0.15
    assert ber(ra.fingerprint_raw, rc.fingerprint_raw or []) > 0.3


@pytest.mark.skipif(not fpmod.available(), reason="libchromaprint is not installed")
def test_corrupt_data_found_while_fingerprinting_is_refused(tmp_path: Path) -> None:
    good = write_audio(tmp_path / "g.flac", "flac", kind="noise", seconds=4.0)
    data = bytearray(good.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 3000] = os.urandom(3000)
    bad = tmp_path / "bad.flac"
    bad.write_bytes(bytes(data))
    r = probe(bad, tmp_path, fingerprint=True)
    assert r.status == "quarantined", r
    assert "corrupt" in (r.reason or "")


def test_streamed_and_in_memory_reads_give_the_same_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Files above store.MAX_IN_MEMORY are streamed through HashingReader; both paths agree,
    # on good files and on the truncation checks.
    good = write_audio(tmp_path / "good.ogg", "ogg", seconds=3.0)
    write_tags(good, title="T", artist=["A", "B"], album="Al", track=1)
    half = cut(write_audio(tmp_path / "w.flac", "flac", seconds=6.0), tmp_path / "half.flac")
    in_memory = [probe(p, tmp_path / "a", mode="copy") for p in (good, half)]
    monkeypatch.setattr(store, "MAX_IN_MEMORY", 100)
    streamed = [probe(p, tmp_path / "b", mode="copy") for p in (good, half)]
    assert in_memory[0].status == "ok" and in_memory[1].status == "quarantined"
    assert in_memory == streamed
    stored = tmp_path / "b" / store.store_relpath(streamed[0].sha256 or "")
    assert stored.read_bytes() == good.read_bytes()


def test_flac_magic_on_garbage_is_refused(tmp_path: Path) -> None:
    # The format named by the magic bytes is tried first; when it refuses, probing decides.
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + bytes(range(256)) * 20)
    r = probe(bad, tmp_path)
    assert r.status == "quarantined" and r.sha256 is None
    assert "not a readable audio file" in (r.reason or "") or "unreadable" in (r.reason or "")


def test_wav_with_wrong_extension_is_read_by_content(tmp_path: Path) -> None:
    wav = write_audio(tmp_path / "a.wav", "wav", kind="tone", seconds=1.0)
    ogg_named = tmp_path / "a.ogg"
    wav.rename(ogg_named)
    r = probe(ogg_named, tmp_path)
    assert r.status == "ok", r.reason
    assert (r.container, r.codec, r.duration_ms) == ("wav", "pcm_s16le", 1000)


def test_a_chunk_of_copies_is_stored_once_each_and_known_contents_are_not_rewritten(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write_audio(tmp_path / "in" / "a.flac", "flac", seconds=1.0, seed=1)
    b = write_audio(tmp_path / "in" / "b.opus", "opus", seconds=1.0, seed=2)
    dup = tmp_path / "in" / "dup.flac"
    dup.write_bytes(a.read_bytes())
    bad = tmp_path / "in" / "bad.flac"
    bad.write_bytes(b"not audio at all" * 100)
    root = tmp_path / "arch"

    def tasks(*paths: Path) -> list[ScanTask]:
        return [ScanTask(str(p), p.stat().st_size, p.stat().st_mtime_ns, "copy", str(root),
                         False, fsync=True) for p in paths]

    res = probe_many(tasks(a, dup, b, bad))
    assert [r.status for r in res] == ["ok", "ok", "ok", "quarantined"]
    assert [r.stored for r in res] == [True, False, True, False]  # the duplicate: once
    for r, p in zip(res[:3], (a, dup, b), strict=True):
        assert (root / store.store_relpath(r.sha256 or "")).read_bytes() == p.read_bytes()
    assert list((root / "store" / ".tmp").iterdir()) == []
    # Contents the store holds are not written again (no temporary file at all).
    made: list[Path] = []
    new_tmp = store.new_tmp_path
    monkeypatch.setattr(store, "new_tmp_path", lambda d: made.append(new_tmp(d)) or made[-1])
    again = probe_many(tasks(a, b))
    assert [r.stored for r in again] == [False, False] and made == []


def test_small_file_is_demuxed_whole_and_a_hole_in_the_middle_is_refused(tmp_path: Path) -> None:
    # Below SEEK_MIN_BYTES the whole file is demuxed (cheaper than a seek), so lost frames
    # anywhere are found even without fingerprints.
    good = write_audio(tmp_path / "g.flac", "flac", seconds=3.0)
    data = bytearray(good.read_bytes())
    assert len(data) < probe_mod.SEEK_MIN_BYTES
    mid = len(data) // 2
    data[mid:mid + 3000] = os.urandom(3000)
    bad = tmp_path / "bad.flac"
    bad.write_bytes(bytes(data))
    assert probe(good, tmp_path).status == "ok"
    r = probe(bad, tmp_path)
    assert r.status == "quarantined" and "corrupt audio data" in (r.reason or ""), r.reason
