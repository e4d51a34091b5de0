"""Embedded metadata: the catalog's facts about a track, written into (and read from) a file.

One neutral form, TrackTags, is mapped onto each tag system mutagen knows: Vorbis comments
(Ogg Opus, Ogg Vorbis, FLAC), ID3 (MP3, WAVE, AIFF) and MP4 atoms. Loudness goes in as
ReplayGain 2.0 tags (REPLAYGAIN_TRACK_GAIN/PEAK, reference -18 LUFS), except in Ogg Opus,
where RFC 7845 asks for R128_TRACK_GAIN (Q7.8 dB to reach -23 LUFS) and no REPLAYGAIN_* tags.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mutagen
from mutagen import id3, mp4
from mutagen.flac import FLAC, Picture
from mutagen.oggopus import OggOpus

from soundkeep.audio.loudness import Loudness
from soundkeep.errors import InputError

FRONT_COVER = 3  # picture type in FLAC/ID3: cover (front)
# A placeholder comment that holds room for tags written later (see reserve_bytes).
RESERVED_KEY = "SOUNDKEEP_RESERVED"


class TagError(InputError):
    """A file's tags cannot be written or read (unknown container, broken tag block)."""


@dataclass(frozen=True)
class TrackTags:
    """What the catalog knows about a track, as embedded in its file."""

    track_id: int
    title: str
    artists: tuple[str, ...] = ()
    album: str | None = None
    album_artists: tuple[str, ...] = ()
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    date: str | None = None
    isrc: str | None = None
    upc: str | None = None
    label: str | None = None
    copyright: str | None = None
    rights: str | None = None

    def vorbis(self) -> dict[str, list[str]]:
        """The tags as Vorbis comments (upper-case names, one list of values per name)."""
        out: dict[str, list[str]] = {"TITLE": [self.title],
                                     "SOUNDKEEP_TRACK_ID": [str(self.track_id)]}
        pairs: list[tuple[str, object]] = [
            ("ALBUM", self.album), ("TRACKNUMBER", self.track_number),
            ("TRACKTOTAL", self.track_total), ("DISCNUMBER", self.disc_number),
            ("DATE", self.date), ("ISRC", self.isrc), ("BARCODE", self.upc),
            ("LABEL", self.label), ("COPYRIGHT", self.copyright), ("LICENSE", self.rights),
        ]
        for key, value in pairs:
            if value is not None and value != "":
                out[key] = [str(value)]
        if self.artists:
            out["ARTIST"] = list(self.artists)
        if self.album_artists:
            out["ALBUMARTIST"] = list(self.album_artists)
        return out

    def digest(self) -> str:
        """sha256 of the tags as JSON: tells later whether the catalog changed since."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Cover:
    """A picture to embed: its bytes, MIME type and picture type."""

    data: bytes
    mime: str
    kind: int = FRONT_COVER
    description: str = ""

    def flac_picture(self) -> Picture:
        """As a FLAC/Vorbis METADATA_BLOCK_PICTURE."""
        pic = Picture()
        pic.data, pic.mime, pic.type, pic.desc = self.data, self.mime, self.kind, self.description
        return pic

    @classmethod
    def from_file(cls, path: Path) -> Cover:
        """Read an image file (PNG or JPEG, by its magic bytes)."""
        data = path.read_bytes()
        mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else \
            "image/jpeg" if data[:3] == b"\xff\xd8\xff" else ""
        if not mime:
            raise TagError("cover art is neither PNG nor JPEG", file=str(path))
        return cls(data, mime)


@dataclass
class ReadBack:
    """Tags as read from a file: Vorbis-style names (upper case) and the embedded pictures."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    covers: list[Cover] = field(default_factory=list)

    def first(self, key: str) -> str | None:
        """The first value of a field, or None."""
        values = self.fields.get(key.upper())
        return values[0] if values else None


def gain_fields(loudness: Loudness, opus: bool) -> dict[str, list[str]]:
    """The loudness tags for one file: R128_TRACK_GAIN in Opus, ReplayGain 2.0 elsewhere."""
    if opus:
        q = loudness.r128_gain_q78()
        return {} if q is None else {"R128_TRACK_GAIN": [str(q)]}
    gain = loudness.replaygain_db()
    out = {"REPLAYGAIN_TRACK_PEAK": [f"{loudness.sample_peak:.6f}"]}
    if gain is not None:
        out["REPLAYGAIN_TRACK_GAIN"] = [f"{gain:+.2f} dB"]
    return out


_GAIN_KEYS = ("REPLAYGAIN_TRACK_GAIN", "REPLAYGAIN_TRACK_PEAK", "REPLAYGAIN_ALBUM_GAIN",
              "REPLAYGAIN_ALBUM_PEAK", "R128_TRACK_GAIN", "R128_ALBUM_GAIN")

# ID3 frames for the Vorbis names that have one; the rest go in TXXX frames.
_ID3_TEXT = {"TITLE": "TIT2", "ARTIST": "TPE1", "ALBUM": "TALB", "ALBUMARTIST": "TPE2",
             "DATE": "TDRC", "ISRC": "TSRC", "LABEL": "TPUB", "COPYRIGHT": "TCOP"}
# MP4 atoms likewise; the rest go in ----:com.apple.iTunes:NAME freeform atoms.
_MP4_TEXT = {"TITLE": "\xa9nam", "ARTIST": "\xa9ART", "ALBUM": "\xa9alb",
             "ALBUMARTIST": "aART", "DATE": "\xa9day", "COPYRIGHT": "cprt"}
_FREEFORM = "----:com.apple.iTunes:"


def write_tags(path: Path, tags: TrackTags, loudness: Loudness | None,
               cover: Cover | None = None, keep_size: bool = False) -> None:
    """Embed tags (and loudness, and a cover) into a file in place; other tags are kept.

    keep_size: reuse the existing tag block's room exactly when the new tags fit in it, so
    the audio data after it is not moved (Ogg pages need no renumbering).
    """
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise TagError(f"cannot read the tags: {exc}", file=str(path)) from None
    if audio is None:
        raise TagError("no tag format known for this file", file=str(path),
                       expected="Ogg, FLAC, MP3, WAVE, AIFF or MP4")
    is_opus = isinstance(audio, OggOpus)
    fields = tags.vorbis()
    if loudness is not None:
        fields.update(gain_fields(loudness, is_opus))
    padding: Callable[[Any], int] | None = None
    if keep_size:
        def padding(info: Any) -> int:
            return int(info.padding) if info.padding >= 0 else int(info.get_default_padding())
    try:
        if isinstance(audio, FLAC) or _has_vorbis_comments(audio):
            _write_vorbis(audio, fields, cover, is_opus)
        elif isinstance(audio, mp4.MP4):
            _write_mp4(audio, fields, cover)
        elif hasattr(audio, "add_tags") and _id3_capable(audio):
            _write_id3(audio, fields, cover)
        else:
            raise TagError(f"cannot embed tags in {type(audio).__name__} files", file=str(path),
                           expected="Ogg, FLAC, MP3, WAVE, AIFF or MP4")
        audio.save(padding=padding)
    except (mutagen.MutagenError, OSError, ValueError) as exc:
        raise TagError(f"cannot write the tags: {exc}", file=str(path)) from None


def _has_vorbis_comments(audio: Any) -> bool:
    from mutagen._vorbis import VComment
    if audio.tags is None and hasattr(audio, "add_tags"):
        try:
            audio.add_tags()
        except (mutagen.MutagenError, TypeError, ValueError):
            return False
    return isinstance(audio.tags, VComment)


def _id3_capable(audio: Any) -> bool:
    if audio.tags is None:
        audio.add_tags()
    return isinstance(audio.tags, id3.ID3)


def _write_vorbis(audio: Any, fields: dict[str, list[str]], cover: Cover | None,
                  opus: bool) -> None:
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for key in (*_GAIN_KEYS, RESERVED_KEY):
        if key in tags:
            del tags[key]
    for key, values in fields.items():
        tags[key] = values
    if cover is not None:
        if isinstance(audio, FLAC):
            audio.clear_pictures()
            audio.add_picture(cover.flac_picture())
        else:
            tags["METADATA_BLOCK_PICTURE"] = [
                base64.b64encode(cover.flac_picture().write()).decode("ascii")]
    if opus:
        # RFC 7845: Opus carries R128_* gains, never REPLAYGAIN_* ones.
        for key in ("REPLAYGAIN_TRACK_GAIN", "REPLAYGAIN_TRACK_PEAK"):
            if key in tags:
                del tags[key]


def _write_id3(audio: Any, fields: dict[str, list[str]], cover: Cover | None) -> None:
    tags: id3.ID3 = audio.tags
    for key in _GAIN_KEYS:
        tags.delall(f"TXXX:{key}")
    for key, values in fields.items():
        if key in ("TRACKNUMBER", "TRACKTOTAL", "DISCNUMBER"):
            continue
        frame = _ID3_TEXT.get(key)
        if frame is not None:
            tags.setall(frame, [getattr(id3, frame)(encoding=3, text=values)])
        else:
            tags.setall(f"TXXX:{key}", [id3.TXXX(encoding=3, desc=key, text=values)])
    if "TRACKNUMBER" in fields:
        text = fields["TRACKNUMBER"][0] + (
            "/" + fields["TRACKTOTAL"][0] if "TRACKTOTAL" in fields else "")
        tags.setall("TRCK", [id3.TRCK(encoding=3, text=[text])])
    if "DISCNUMBER" in fields:
        tags.setall("TPOS", [id3.TPOS(encoding=3, text=fields["DISCNUMBER"])])
    if cover is not None:
        tags.delall("APIC")
        tags.add(id3.APIC(encoding=3, mime=cover.mime, type=cover.kind, desc=cover.description,
                          data=cover.data))


def _write_mp4(audio: Any, fields: dict[str, list[str]], cover: Cover | None) -> None:
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    for key in _GAIN_KEYS:
        tags.pop(_FREEFORM + key, None)
    for key, values in fields.items():
        if key in ("TRACKNUMBER", "TRACKTOTAL", "DISCNUMBER"):
            continue
        atom = _MP4_TEXT.get(key)
        if atom is not None:
            tags[atom] = values
        else:
            tags[_FREEFORM + key] = [mp4.MP4FreeForm(v.encode("utf-8")) for v in values]
    if "TRACKNUMBER" in fields:
        total = int(fields["TRACKTOTAL"][0]) if "TRACKTOTAL" in fields else 0
        tags["trkn"] = [(int(fields["TRACKNUMBER"][0]), total)]
    if "DISCNUMBER" in fields:
        tags["disk"] = [(int(fields["DISCNUMBER"][0]), 0)]
    if cover is not None:
        fmt = mp4.MP4Cover.FORMAT_PNG if cover.mime == "image/png" else mp4.MP4Cover.FORMAT_JPEG
        tags["covr"] = [mp4.MP4Cover(cover.data, imageformat=fmt)]


def read_tags(path: Path) -> ReadBack:
    """Read a file's tags back into Vorbis-style names, whatever its tag system."""
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise TagError(f"cannot read the tags: {exc}", file=str(path)) from None
    out = ReadBack()
    if audio is None or audio.tags is None:
        return out
    if isinstance(audio.tags, id3.ID3):
        _read_id3(audio.tags, out)
    elif isinstance(audio.tags, mp4.MP4Tags):
        _read_mp4(audio.tags, out)
    else:
        for key, value in audio.tags.items():
            k = key.upper()
            if k == "METADATA_BLOCK_PICTURE":
                for v in value:
                    pic = Picture(base64.b64decode(v))
                    out.covers.append(Cover(pic.data, pic.mime, pic.type, pic.desc))
            else:
                out.fields.setdefault(k, []).extend(value)
        if isinstance(audio, FLAC):
            out.covers.extend(Cover(p.data, p.mime, p.type, p.desc) for p in audio.pictures)
    return out


def _read_id3(tags: id3.ID3, out: ReadBack) -> None:
    back = {v: k for k, v in _ID3_TEXT.items()}
    for frame in tags.values():
        fid = frame.FrameID
        if fid == "APIC":
            out.covers.append(Cover(frame.data, frame.mime, int(frame.type), frame.desc))
        elif fid == "TXXX":
            out.fields[frame.desc.upper()] = [str(t) for t in frame.text]
        elif fid == "TRCK":
            num, _, total = str(frame.text[0]).partition("/")
            out.fields["TRACKNUMBER"] = [num]
            if total:
                out.fields["TRACKTOTAL"] = [total]
        elif fid == "TPOS":
            out.fields["DISCNUMBER"] = [str(frame.text[0]).partition("/")[0]]
        elif fid in back:
            out.fields[back[fid]] = [str(t) for t in frame.text]


def _read_mp4(tags: mp4.MP4Tags, out: ReadBack) -> None:
    back = {v: k for k, v in _MP4_TEXT.items()}
    for key, values in tags.items():
        if key == "covr":
            for c in values:
                mime = "image/png" if c.imageformat == mp4.MP4Cover.FORMAT_PNG else "image/jpeg"
                out.covers.append(Cover(bytes(c), mime))
        elif key == "trkn" and values:
            out.fields["TRACKNUMBER"] = [str(values[0][0])]
            if values[0][1]:
                out.fields["TRACKTOTAL"] = [str(values[0][1])]
        elif key == "disk" and values:
            out.fields["DISCNUMBER"] = [str(values[0][0])]
        elif key.startswith(_FREEFORM):
            out.fields[key[len(_FREEFORM):].upper()] = [bytes(v).decode("utf-8", "replace")
                                                        for v in values]
        elif key in back:
            out.fields[back[key]] = [str(v) for v in values]


def embedded_cover(path: Path) -> Cover | None:
    """The picture a file already carries (the front cover if marked), or None."""
    try:
        covers = read_tags(path).covers
    except TagError:
        return None
    if not covers:
        return None
    return next((c for c in covers if c.kind == FRONT_COVER), covers[0])


def reserve_bytes(tags: TrackTags, cover: Cover | None) -> int:
    """A safe upper bound of the Vorbis comment block these tags (and gains) will need."""
    fields = tags.vorbis()
    fields["R128_TRACK_GAIN"] = ["-32768"]
    size = 64 + sum(4 + len(k) + 1 + len(v.encode("utf-8")) for k, vs in fields.items()
                    for v in vs)
    if cover is not None:
        size += 4 + len("METADATA_BLOCK_PICTURE=") + 4 * (
            (32 + len(cover.mime) + len(cover.description.encode()) + len(cover.data) + 2) // 3)
    return size + 256
