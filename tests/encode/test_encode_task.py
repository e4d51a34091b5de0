"""The encode task on single files: outputs verified, tagged, stored, restorable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from encfix import PNG_1X1, SINGULARITY, SONIC_PI, decode, sha256, sine, tone_file, write_audio
from mutagen.flac import FLAC, Picture

from soundkeep.audio import encode as enc
from soundkeep.audio.encode import EncodeJob, encode_one
from soundkeep.audio.restore import apply_patch
from soundkeep.audio.tags import TrackTags, read_tags

TAGS = TrackTags(track_id=7, title="Seven", artists=("A", "B"), album="Album", track_number=7,
                 isrc="USRC17607839", upc="012345678905", rights="CC0-1.0")


def job(root: Path, src: Path, codec: str = "opus", **kw: object) -> EncodeJob:
    args: dict[str, object] = dict(
        track_id=7, tier="reencode" if codec == "opus" else "original", codec=codec,
        source_sha256=sha256(src), source_path=str(src), archive_root=str(root), tags=TAGS,
        bitrate=75000 if codec == "opus" else None)
    args.update(kw)
    return EncodeJob(**args)  # type: ignore[arg-type]


def test_reencode_to_opus(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "in.flac", sine(3.0, 44100, 2, -23.0), 44100, "flac")
    f = FLAC(src)
    pic = Picture()
    pic.data, pic.mime, pic.type = PNG_1X1, "image/png", 3
    f.add_picture(pic)
    f.save()
    root = tmp_path / "arch"
    res = encode_one(job(root, src))
    assert res.status == "encoded", res.reason
    out = root / (res.output_path or "")
    assert res.output_path == f"store/{res.output_sha256[:2]}/{res.output_sha256[2:4]}/" \
                              f"{res.output_sha256}"  # type: ignore[index]
    assert sha256(out) == res.output_sha256 and out.stat().st_size == res.output_size
    seconds, rate, channels, _data = decode(out)
    assert (rate, channels) == (48000, 2)
    assert abs(seconds - 3.0) <= 0.05 and res.source_duration_ms == 3000
    assert res.codec == "opus" and res.bitrate == 75000
    back = read_tags(out)
    assert back.first("TITLE") == "Seven" and back.fields["ARTIST"] == ["A", "B"]
    assert back.first("SOUNDKEEP_TRACK_ID") == "7"
    assert [c.data for c in back.covers] == [PNG_1X1]  # carried over from the original
    # Known signal: a -23 dBFS stereo sine is -23 LUFS, so the R128 gain is ~0.
    assert res.loudness_lufs == pytest.approx(-23.0, abs=0.1)
    assert abs(int(back.first("R128_TRACK_GAIN") or "999")) <= 26
    assert res.replaygain_db == pytest.approx(5.0, abs=0.1)
    assert not list((root / "store" / enc.TMP_SUBDIR).glob("*.part"))


@pytest.mark.parametrize(("channels", "layout"), [(1, "mono"), (6, "5.1")])
def test_channel_layout_is_kept(tmp_path: Path, channels: int, layout: str) -> None:
    src = write_audio(tmp_path / "in.wav", sine(1.0, 44100, channels), 44100, "wav", layout)
    res = encode_one(job(tmp_path / "arch", src))
    assert res.status == "encoded", res.reason
    seconds, _rate, got, _ = decode(tmp_path / "arch" / (res.output_path or ""))
    assert got == channels and res.channels == channels and abs(seconds - 1.0) <= 0.05


def test_opus_encoding_is_deterministic(tmp_path: Path) -> None:
    src = SONIC_PI / "ambi_choir.flac"
    a = encode_one(job(tmp_path / "a", src))
    b = encode_one(job(tmp_path / "b", src))
    again = encode_one(job(tmp_path / "a", src))
    assert a.status == b.status == again.status == "encoded"
    assert a.output_sha256 == b.output_sha256 == again.output_sha256
    assert (tmp_path / "a" / (a.output_path or "")).read_bytes() == \
        (tmp_path / "b" / (b.output_path or "")).read_bytes()


@pytest.mark.parametrize("src", [SINGULARITY / "Awakening.ogg", SONIC_PI / "ambi_piano.flac"],
                         ids=["ogg", "flac"])
def test_original_kept_with_tags_and_restorable(tmp_path: Path, src: Path) -> None:
    root = tmp_path / "arch"
    res = encode_one(job(root, src, codec="original"))
    assert res.status == "kept_original", res.reason
    out = root / (res.output_path or "")
    tagged = out.read_bytes()
    assert res.output_sha256 != res.source_sha256  # metadata is embedded...
    back = read_tags(out)
    assert back.first("TITLE") == "Seven" and back.first("ISRC") == "USRC17607839"
    assert back.first("REPLAYGAIN_TRACK_GAIN", ) is not None
    assert back.first("REPLAYGAIN_TRACK_PEAK") is not None
    # ... the audio is untouched: same samples, same duration ...
    s_orig, _, _, d_orig = decode(src)
    s_out, _, _, d_out = decode(out)
    assert s_orig == s_out and np.array_equal(d_orig, d_out)
    # ... and the patch in the store gives back the original bytes exactly.
    patch = (root / (res.patch_path or "")).read_bytes()
    assert hashlib.sha256(patch).hexdigest() == res.patch_sha256
    restored = apply_patch(tagged, patch)
    assert restored == src.read_bytes()
    assert hashlib.sha256(restored).hexdigest() == res.source_sha256


def test_a_corrupt_input_fails_and_leaves_nothing(tmp_path: Path) -> None:
    good = tone_file(tmp_path / "good.flac", seconds=2.0).read_bytes()
    root = tmp_path / "arch"
    # Garbage after the header (the decoder skips it silently: caught by the length check),
    # and garbage in the middle (the decoder logs and drops frames: caught by its log).
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good[:8192] + bytes(range(256)) * 200)
    holed = tmp_path / "holed.flac"
    mid = len(good) // 2
    holed.write_bytes(good[:mid] + bytes(range(256)) * 20 + good[mid + 5000:])
    for bad, why in ((cut, "decoded 0.000 s of the 2.000 s"), (holed, "flac: ")):
        for codec in ("opus", "original"):
            res = encode_one(job(root, bad, codec=codec))
            assert res.status == "failed" and (res.reason or "").startswith("decode_error"), \
                res.reason
            assert why in (res.reason or "")
            assert res.output_path is None and res.output_sha256 is None
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"not audio at all" * 100)
    res = encode_one(job(root, garbage))
    assert res.status == "failed" and (res.reason or "").startswith("decode_error")
    stored = [p for p in (root / "store").rglob("*") if p.is_file()] if (root / "store").exists() \
        else []
    assert stored == []


def test_missing_or_changed_source(tmp_path: Path) -> None:
    src = tone_file(tmp_path / "in.flac", seconds=0.5)
    res = encode_one(job(tmp_path / "arch", src, source_path=str(tmp_path / "gone.flac")))
    assert res.status == "failed" and (res.reason or "").startswith("missing_source")
    res = encode_one(job(tmp_path / "arch", src, source_sha256="0" * 64))
    assert res.status == "failed" and (res.reason or "").startswith("source_changed")
    res = encode_one(job(tmp_path / "arch", src, codec="vorbis"))
    assert res.status == "failed" and (res.reason or "").startswith("unsupported_codec")


def test_silence_is_kept_as_silence(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "quiet.flac", np.zeros((2, 44100), np.float32), 44100)
    res = encode_one(job(tmp_path / "arch", src))
    assert res.status == "encoded", res.reason
    assert res.loudness_lufs is None and res.sample_peak == 0.0
    assert "R128_TRACK_GAIN" not in read_tags(tmp_path / "arch" / (res.output_path or "")).fields


def test_verification_catches_short_and_silent_outputs(tmp_path: Path) -> None:
    out = tone_file(tmp_path / "o.opus", seconds=1.0, fmt="opus")
    silent = write_audio(tmp_path / "s.opus", np.zeros((2, 48000), np.float32), 48000, "opus")
    assert abs(enc._verify(out, 1.0, 0.5)[0] - 1.0) <= 0.05
    with pytest.raises(enc._Fail, match="verify_duration"):
        enc._verify(out, 1.2, 0.5)
    with pytest.raises(enc._Fail, match="verify_silent"):
        enc._verify(silent, 1.0, 0.5)
    assert enc._verify(silent, 1.0, 0.0)[0] == pytest.approx(1.0, abs=0.05)
    broken = tmp_path / "b.opus"
    broken.write_bytes(b"OggS" + bytes(3000))
    with pytest.raises(enc._Fail, match="verify_decode"):
        enc._verify(broken, 1.0, 0.5)
