"""Helpers for the audio tests: audio generated with PyAV (tones, noise, melodies, silence),
tags written with mutagen, broken files, the Debian CC audio, and catalog rows in plain SQL."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

SINGULARITY = Path("/usr/share/games/singularity/music")     # CC BY-SA 3.0 Ogg Vorbis, tagged
SONIC_PI = Path("/usr/share/sonic-pi/samples")               # CC0 FLAC samples

# name -> (container format, codec, sample rate)
FORMATS: dict[str, tuple[str, str, int]] = {
    "flac": ("flac", "flac", 44100),
    "ogg": ("ogg", "vorbis", 44100),      # FFmpeg's own (experimental) Vorbis encoder
    "opus": ("ogg", "libopus", 48000),
    "mp3": ("mp3", "libmp3lame", 44100),
    "m4a": ("ipod", "aac", 44100),
    "wav": ("wav", "pcm_s16le", 44100),
}


def signal(kind: str, seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Stereo float32 samples: 'tone' (440 Hz), 'noise', 'melody' (random notes) or 'silence'."""
    n = round(seconds * rate)
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    if kind == "tone":
        mono = 0.3 * np.sin(2 * np.pi * 440.0 * t)
    elif kind == "noise":
        mono = 0.2 * rng.standard_normal(n)
    elif kind == "silence":
        mono = np.zeros(n)
    elif kind == "melody":
        # Random notes with harmonics: varied chroma, so fingerprints are rich and distinct.
        note_len = int(0.25 * rate)
        freqs = 220.0 * 2 ** (rng.integers(0, 24, n // note_len + 1) / 12)
        f = np.repeat(freqs, note_len)[:n]
        phase = 2 * np.pi * np.cumsum(f) / rate
        mono = 0.25 * np.sin(phase) + 0.1 * np.sin(2 * phase) + 0.05 * np.sin(3 * phase)
        mono += 0.01 * rng.standard_normal(n)
    else:
        raise ValueError(kind)
    return np.tile(mono.astype(np.float32), (2, 1))


def write_audio(path: Path, fmt: str = "flac", kind: str = "melody", seconds: float = 3.0,
                seed: int = 0, bitrate: int | None = None, lead_in: float = 0.0) -> Path:
    """Encode a generated signal with PyAV into one of FORMATS."""
    container, codec, rate = FORMATS[fmt]
    data = signal(kind, seconds, rate, seed)
    if lead_in:
        data = np.concatenate([np.zeros((2, int(lead_in * rate)), np.float32), data], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "-2"}
        if bitrate:
            stream.bit_rate = bitrate
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=sample_fmt, layout="stereo", rate=rate)
        for i in range(0, data.shape[1], 4096):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, i:i + 4096]),
                                               format="fltp", layout="stereo")
            frame.sample_rate = rate
            frame.pts = i
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_tags(path: Path, **tags: Any) -> Path:
    """Write tags with mutagen in the file's own tag system (Vorbis comments, ID3, MP4).

    Keys: title, artist (str or list), album, isrc, mbid (recording), track, disc.
    """
    import mutagen
    from mutagen import id3
    from mutagen.mp4 import MP4, MP4FreeForm
    from mutagen.wave import WAVE

    artists = tags.get("artist")
    artists = [artists] if isinstance(artists, str) else artists
    head = path.read_bytes()[:12]
    if head[:4] == b"RIFF":
        w = WAVE(path)
        if w.tags is None:
            w.add_tags()
        _id3(w.tags, tags, artists)
        w.save()
        return path
    m = mutagen.File(path)
    assert m is not None, path
    if isinstance(m, MP4):
        if m.tags is None:
            m.add_tags()
        t = m.tags
        if "title" in tags:
            t["\xa9nam"] = [tags["title"]]
        if artists:
            t["\xa9ART"] = artists
        if "album" in tags:
            t["\xa9alb"] = [tags["album"]]
        if "isrc" in tags:
            t["----:com.apple.iTunes:ISRC"] = [MP4FreeForm(tags["isrc"].encode())]
        if "mbid" in tags:
            t["----:com.apple.iTunes:MusicBrainz Track Id"] = [MP4FreeForm(tags["mbid"].encode())]
        if "track" in tags:
            t["trkn"] = [(tags["track"], 0)]
        if "disc" in tags:
            t["disk"] = [(tags["disc"], 0)]
    elif m.tags is None or isinstance(m.tags, id3.ID3):
        if m.tags is None:
            m.add_tags()
        _id3(m.tags, tags, artists)
    else:  # Vorbis comments
        t = m.tags
        for key, name in (("title", "title"), ("album", "album"), ("isrc", "isrc"),
                          ("mbid", "musicbrainz_trackid")):
            if key in tags:
                t[name] = [tags[key]]
        if artists:
            t["artist"] = artists
        if "track" in tags:
            t["tracknumber"] = [f"{tags['track']}/12"]
        if "disc" in tags:
            t["discnumber"] = [str(tags["disc"])]
    m.save()
    return path


def _id3(t: Any, tags: dict[str, Any], artists: list[str] | None) -> None:
    from mutagen import id3

    if "title" in tags:
        t.add(id3.TIT2(encoding=3, text=[tags["title"]]))
    if artists:
        t.add(id3.TPE1(encoding=3, text=artists))
    if "album" in tags:
        t.add(id3.TALB(encoding=3, text=[tags["album"]]))
    if "isrc" in tags:
        t.add(id3.TSRC(encoding=3, text=[tags["isrc"]]))
    if "mbid" in tags:
        t.add(id3.UFID(owner="http://musicbrainz.org", data=tags["mbid"].encode()))
    if "track" in tags:
        t.add(id3.TRCK(encoding=3, text=[f"{tags['track']}/12"]))
    if "disc" in tags:
        t.add(id3.TPOS(encoding=3, text=[str(tags["disc"])]))


def cut(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """A copy of src holding only its first `keep` share of bytes (a file cut short)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


@dataclass
class Catalog:
    """Catalog rows written with plain SQL (the ingest stage is another engineer's)."""

    con: Any
    next_artist: int = 1
    artists: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)

    def source(self, name: str) -> int:
        """The source_id of a named source (a row in `sources`)."""
        if name not in self.sources:
            sid = len(self.sources) + 1
            self.con.execute("""INSERT INTO sources (source_id, source_file, sha256, source_name,
                                finished_at) VALUES (?, ?, ?, ?, now())""",
                             [sid, f"{name}.jsonl", "0" * 64, name])
            self.sources[name] = sid
        return self.sources[name]

    def track(self, track_id: int, title: str, *, artists: tuple[str, ...] = (),
              isrc: str | None = None, duration_ms: int | None = None,
              release: str | None = None, track_number: int | None = None,
              source: str = "test", source_key: str | None = None,
              listens: int | None = None) -> int:
        """Insert one track (with its artists and release); returns the track_id."""
        release_id = None
        if release is not None:
            release_id = track_id * 10
            self.con.execute("INSERT INTO releases (release_id, title) VALUES (?, ?)",
                             [release_id, release])
        self.con.execute("""
            INSERT INTO tracks (track_id, title, release_id, track_number, duration_ms, isrc,
                                listens, rights_status, distributable, source_id, source_key)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'CC-BY-4.0', true, ?, ?)""",
                         [track_id, title, release_id, track_number, duration_ms, isrc,
                          listens, self.source(source), source_key])
        for pos, name in enumerate(artists):
            if name not in self.artists:
                self.artists[name] = self.next_artist
                self.con.execute("INSERT INTO artists (artist_id, name) VALUES (?, ?)",
                                 [self.next_artist, name])
                self.next_artist += 1
            self.con.execute("INSERT INTO track_artists VALUES (?, ?, ?, NULL)",
                             [track_id, self.artists[name], pos])
        return track_id


def rows(con: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """All rows of a query (fully fetched, so the connection is free again)."""
    return list(con.execute(sql, params or []).fetchall())


def bump_mtime(path: Path) -> None:
    """Make a file look changed even within the file system's timestamp resolution."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
