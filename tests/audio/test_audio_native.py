"""native: FLAC and Ogg proven whole from their checksums, exactly as the demuxer reads them.

Formats: FLAC (RFC 9639: STREAMINFO, frame headers with CRC-8, frames ending in CRC-16), Ogg
(RFC 3533: pages with CRC-32 and sequence numbers) carrying Vorbis (Vorbis I specification)
or Opus (RFC 7845: OpusHead, OpusTags). Files are written by PyAV and tagged by mutagen here.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from audiofix import SINGULARITY, SONIC_PI, write_audio, write_tags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soundkeep.audio import native, store
from soundkeep.audio import probe as probe_mod
from soundkeep.audio.probe import FileResult, ScanTask, probe_file

FIELDS = ("status", "reason", "sha256", "container", "codec", "sample_rate", "channels",
          "duration_ms", "bitrate", "tag_title", "tag_artists", "tag_album", "tag_isrc",
          "tag_mb_recording_id", "tag_track_number", "tag_disc_number")


def scan_one(path: Path, *, demuxer_only: bool = False,
             monkeypatch: pytest.MonkeyPatch | None = None) -> FileResult:
    st_ = path.stat()
    task = ScanTask(str(path), st_.st_size, st_.st_mtime_ns, "in_place", str(path.parent),
                    False, fsync=False)
    if not demuxer_only:
        return probe_file(task)
    assert monkeypatch is not None
    with monkeypatch.context() as m:
        m.setattr(native, "probe", lambda data, whole_check: None)
        return probe_file(task)


def facts(path: Path) -> native.Facts | None:
    data = path.read_bytes()
    return native.probe(memoryview(data), whole_check=len(data) < probe_mod.SEEK_MIN_BYTES)


def same_as_demuxer(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert facts(path) is not None, f"{path.name} was not proven whole"
    fast = scan_one(path)
    slow = scan_one(path, demuxer_only=True, monkeypatch=monkeypatch)
    assert {k: getattr(fast, k) for k in FIELDS} == {k: getattr(slow, k) for k in FIELDS}


@pytest.mark.parametrize("fmt", ["flac", "ogg", "opus"])
@pytest.mark.parametrize("seconds", [0.4, 3.0, 7.0])
def test_generated_files_read_natively_match_the_demuxer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, seconds: float) -> None:
    path = write_audio(tmp_path / f"s.{fmt}", fmt, kind="noise", seconds=seconds)
    write_tags(path, title="Sóng", artist=["Band", "Guest"], album="Album",
               isrc="us-abc-12-34567", mbid="0f0e9a2a-4a5e-4c6c-9f6c-2b1e8d1c7a11", track=3,
               disc=2)
    same_as_demuxer(path, monkeypatch)
    assert scan_one(path).tag_artists == ["Band", "Guest"]


def test_a_flac_of_one_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 0.05 s is fewer samples than one block: the first frame is the last.
    path = write_audio(tmp_path / "blip.flac", "flac", kind="noise", seconds=0.05)
    same_as_demuxer(path, monkeypatch)


def test_comment_header_spanning_many_ogg_pages(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import mutagen

    path = write_audio(tmp_path / "long.opus", "opus", seconds=2.0)
    f = mutagen.File(path)
    f["title"] = "Long"
    f["comment"] = "x" * 200_000  # about 50 pages of comment header
    f.save()
    same_as_demuxer(path, monkeypatch)
    assert scan_one(path).tag_title == "Long"


def test_real_cc_audio_is_proven_whole_and_matches_the_demuxer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    paths = sorted(SONIC_PI.glob("*.flac"))[::12] + sorted(SINGULARITY.glob("*.ogg"))[:3]
    assert len(paths) > 10
    for p in paths:
        same_as_demuxer(p, monkeypatch)


def _last_flac_frame(data: bytes) -> int:
    """Offset of the last frame of a FLAC file (header check, as the scan does)."""
    at = len(data)
    while True:
        at = max(data.rfind(b"\xff\xf8", 0, at), data.rfind(b"\xff\xf9", 0, at))
        assert at > 0
        if native._frame_header(memoryview(data), at) is not None:
            return at


def test_flac_cut_at_a_frame_boundary_is_not_whole(tmp_path: Path) -> None:
    # Every frame left checks out, but STREAMINFO counts samples that are not there.
    path = write_audio(tmp_path / "w.flac", "flac", kind="noise", seconds=3.0)
    whole = path.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole[:_last_flac_frame(whole)])
    assert facts(cut) is None
    # The demuxer then judges it: one lost final frame (under 0.1 s) is within its tolerance
    # for the last packet, and the length it reports is where the audio really ends.
    r, w = scan_one(cut), scan_one(path)
    assert r.status == "ok" and w.duration_ms == 3000
    assert r.duration_ms is not None and 2900 < r.duration_ms < 3000


def test_flac_missing_bytes_of_its_last_frame_is_not_whole(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "w.flac", "flac", kind="noise", seconds=3.0).read_bytes()
    short = tmp_path / "short.flac"
    short.write_bytes(whole[:-10])
    assert facts(short) is None
    assert scan_one(short).status == "quarantined"


def _ogg_pages(data: bytes) -> list[tuple[int, int]]:
    out, pos = [], 0
    while pos < len(data):
        nseg = data[pos + 26]
        length = 27 + nseg + sum(data[pos + 27:pos + 27 + nseg])
        out.append((pos, length))
        pos += length
    return out


def test_ogg_missing_a_page_or_its_end_of_stream_is_not_whole(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "w.ogg", "ogg", kind="noise", seconds=3.0)
    data = path.read_bytes()
    pages = _ogg_pages(data)
    assert len(pages) > 4
    pos, length = pages[len(pages) // 2]
    gap = tmp_path / "gap.ogg"
    gap.write_bytes(data[:pos] + data[pos + length:])
    with pytest.raises(native.Damaged):
        facts(gap)
    r = scan_one(gap)  # the demuxer would play over the hole
    assert r.status == "quarantined" and "Ogg page" in (r.reason or ""), r.reason
    # The last page without its end-of-stream flag (its CRC made right again).
    pos, length = pages[-1]
    page = bytearray(data[pos:pos + length])
    page[5] &= ~0x04
    page[22:26] = b"\0\0\0\0"
    page[22:26] = struct.pack("<I", native._ogg_crc(memoryview(bytes(page))))
    no_eos = tmp_path / "noeos.ogg"
    no_eos.write_bytes(data[:pos] + bytes(page))
    assert facts(no_eos) is None
    assert "end-of-stream" in (scan_one(no_eos).reason or "")


def test_garbage_with_magic_is_not_whole(tmp_path: Path) -> None:
    for magic in (b"fLaC", b"OggS"):
        p = tmp_path / "junk"
        p.write_bytes(magic + os.urandom(5000))
        assert facts(p) is None


@pytest.fixture(scope="module")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("native")
    return {fmt: write_audio(d / f"s.{fmt}", fmt, kind="noise", seconds=1.0).read_bytes()
            for fmt in ("flac", "ogg", "opus")}


def _audio_start(fmt: str, data: bytes) -> int:
    """Where the checksummed part starts: FLAC frames (metadata carries no checksum), Ogg at 0."""
    if fmt != "flac":
        return 0
    pos = 4
    while True:
        last, length = data[pos] & 0x80, int.from_bytes(data[pos + 1:pos + 4], "big")
        pos += 4 + length
        if last:
            return pos


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["flac", "ogg", "opus"]), where=st.floats(0, 1),
       flip=st.integers(1, 255))
def test_any_changed_byte_of_the_audio_is_caught(small_files: dict[str, bytes], fmt: str,
                                                 where: float, flip: int) -> None:
    data = bytearray(small_files[fmt])
    start = _audio_start(fmt, bytes(data))
    at = start + min(int(where * (len(data) - start)), len(data) - start - 1)
    assert native.probe(memoryview(bytes(data)), whole_check=True) is not None
    data[at] ^= flip
    try:
        assert native.probe(memoryview(bytes(data)), whole_check=True) is None
    except native.Damaged:
        assert fmt != "flac"


def test_the_whole_file_reader_buffer_is_read_only_up_to_the_file(tmp_path: Path) -> None:
    # The reader reuses a larger buffer across files: a short file after a long one must
    # not be judged with the long one's bytes behind it.
    long = write_audio(tmp_path / "l.flac", "flac", kind="noise", seconds=6.0)
    short = write_audio(tmp_path / "s.flac", "flac", kind="noise", seconds=1.0)
    store.WholeFileReader(str(long))
    r = store.WholeFileReader(str(short))
    assert len(r.data) == short.stat().st_size
    assert native.probe(r.data, whole_check=True) is not None


def _resign(page: bytearray) -> bytes:
    page[22:26] = b"\0\0\0\0"
    page[22:26] = struct.pack("<I", native._ogg_crc(memoryview(bytes(page))))
    return bytes(page)


def test_a_small_ogg_with_an_id3v1_tag_appended_is_read_as_the_demuxer_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_audio(tmp_path / "t.opus", "opus", kind="noise", seconds=2.0)
    tagged = tmp_path / "tagged.opus"
    tagged.write_bytes(path.read_bytes() + b"TAG" + b"\0" * 125)
    fast = scan_one(tagged)
    slow = scan_one(tagged, demuxer_only=True, monkeypatch=monkeypatch)
    assert fast.status == slow.status == "ok" and fast.duration_ms == slow.duration_ms


@pytest.mark.parametrize("fmt", ["ogg", "opus"])
def test_an_ogg_stream_starting_at_a_granule_offset_is_left_to_the_demuxer(
        tmp_path: Path, fmt: str) -> None:
    # A stream cut from a longer one keeps its granules: the length is last - first.
    data = write_audio(tmp_path / f"w.{fmt}", fmt, kind="noise", seconds=2.0).read_bytes()
    out = b""
    for pos, length in _ogg_pages(data):
        page = bytearray(data[pos:pos + length])
        (granule,) = struct.unpack_from("<q", page, 6)
        if granule > 0:
            struct.pack_into("<q", page, 6, granule + 96000)
        out += _resign(page)
    shifted = tmp_path / f"shifted.{fmt}"
    shifted.write_bytes(out)
    assert facts(shifted) is None


def test_flac_metadata_must_start_with_streaminfo(tmp_path: Path) -> None:
    data = write_audio(tmp_path / "w.flac", "flac", seconds=1.0).read_bytes()
    padding = bytes([1]) + (16).to_bytes(3, "big") + b"\0" * 16  # a PADDING block first
    moved = tmp_path / "moved.flac"
    moved.write_bytes(b"fLaC" + padding + bytes([data[4] & 0x7F]) + data[5:])
    assert facts(moved) is None


def test_a_small_flac_missing_a_whole_frame_is_refused(tmp_path: Path) -> None:
    # Every frame left is intact (the CRC over all frames is still 0): the frame numbers
    # show the gap, and the demuxer names it.
    data = write_audio(tmp_path / "w.flac", "flac", kind="noise", seconds=3.0).read_bytes()
    view = memoryview(data)
    starts = [m.start() for m in native._SYNC.finditer(data)
              if native._frame_header(view, m.start()) is not None]
    assert len(starts) > 6
    gap = tmp_path / "gap.flac"
    gap.write_bytes(data[:starts[3]] + data[starts[4]:])
    assert facts(gap) is None
    r = scan_one(gap)
    assert r.status == "quarantined" and "corrupt audio data" in (r.reason or ""), r.reason


def test_a_large_ogg_missing_a_page_near_its_end_is_not_whole(tmp_path: Path) -> None:
    data = write_audio(tmp_path / "w.opus", "opus", kind="noise", seconds=40.0,
                       bitrate=128000).read_bytes()
    assert len(data) > probe_mod.SEEK_MIN_BYTES
    pages = _ogg_pages(data)
    pos, length = pages[-2]
    cut = tmp_path / "cut.opus"
    cut.write_bytes(data[:pos] + data[pos + length:])
    assert facts(path := tmp_path / "w.opus") is not None and path.exists()
    assert facts(cut) is None
