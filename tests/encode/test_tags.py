"""Embedded metadata written and read back with mutagen, in every container encode meets."""

from __future__ import annotations

from pathlib import Path

import pytest
from encfix import PNG_1X1, tone_file

from soundkeep.audio.loudness import Loudness
from soundkeep.audio.tags import Cover, TagError, TrackTags, read_tags, write_tags

TAGS = TrackTags(
    track_id=-4242424242, title="Ünïcode Title", artists=("First Artist", "Second Artist"),
    album="The Album", album_artists=("Album Artist",), track_number=3, track_total=12,
    disc_number=2, date="2012-12-15", isrc="USRC17607839", upc="012345678905",
    label="Label", copyright="(P) 2012 Label", rights="CC-BY-SA-3.0")
LOUD = Loudness(integrated_lufs=-20.0, sample_peak=0.5, samples=48000, rate=48000)


@pytest.mark.parametrize("fmt", ["opus", "ogg", "flac", "mp3", "wav", "m4a"])
def test_tags_and_cover_read_back(tmp_path: Path, fmt: str) -> None:
    path = tone_file(tmp_path / f"t.{fmt}", seconds=0.5, fmt=fmt)
    cover = Cover(PNG_1X1, "image/png")
    write_tags(path, TAGS, LOUD, cover)
    back = read_tags(path)
    assert back.first("TITLE") == TAGS.title
    assert back.fields["ARTIST"] == list(TAGS.artists)
    assert back.first("ALBUM") == "The Album"
    assert back.first("ALBUMARTIST") == "Album Artist"
    assert back.first("TRACKNUMBER") == "3" and back.first("TRACKTOTAL") == "12"
    assert back.first("DISCNUMBER") == "2"
    assert back.first("DATE") == "2012-12-15"
    assert back.first("ISRC") == "USRC17607839"
    assert back.first("BARCODE") == "012345678905"
    assert back.first("LICENSE") == "CC-BY-SA-3.0"
    assert back.first("SOUNDKEEP_TRACK_ID") == "-4242424242"
    assert [c.data for c in back.covers] == [PNG_1X1]
    if fmt == "opus":
        # RFC 7845: Q7.8 gain to -23 LUFS, and no REPLAYGAIN_* tags in Opus.
        assert back.first("R128_TRACK_GAIN") == str(round(-3.0 * 256))
        assert "REPLAYGAIN_TRACK_GAIN" not in back.fields
    else:
        assert back.first("REPLAYGAIN_TRACK_GAIN") == "+2.00 dB"
        assert back.first("REPLAYGAIN_TRACK_PEAK") == "0.500000"


def test_other_tags_are_kept_and_gains_replaced(tmp_path: Path) -> None:
    path = tone_file(tmp_path / "t.flac", seconds=0.5)
    from mutagen.flac import FLAC

    f = FLAC(path)
    f["COMMENT"] = ["keep me"]
    f["REPLAYGAIN_TRACK_GAIN"] = ["-9.99 dB"]
    f.save()
    write_tags(path, TAGS, LOUD)
    back = read_tags(path)
    assert back.first("COMMENT") == "keep me"
    assert back.fields["REPLAYGAIN_TRACK_GAIN"] == ["+2.00 dB"]


def test_keep_size_leaves_the_audio_pages_in_place(tmp_path: Path) -> None:
    path = tone_file(tmp_path / "t.opus", seconds=1.0, fmt="opus")
    from mutagen.oggopus import OggOpus

    f = OggOpus(path)
    f["SOUNDKEEP_RESERVED"] = ["-" * 2000]
    f.save()
    before = path.read_bytes()
    write_tags(path, TAGS, LOUD, keep_size=True)
    after = path.read_bytes()
    assert len(after) == len(before)
    assert after[-4000:] == before[-4000:]  # only the header pages changed
    assert "SOUNDKEEP_RESERVED" not in read_tags(path).fields


def test_unknown_files_are_a_tag_error(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(TagError):
        write_tags(path, TAGS, LOUD)
