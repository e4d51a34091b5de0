"""Read one audio file: sha256, stream facts, exact duration, tags, fingerprint, integrity.

probe_file() is the unit of work of a scan and runs in worker processes: it reads the file
once (into memory, see store.WholeFileReader; the demuxer, the tag reader, the hash and, when
copying, the store's temporary file all use those bytes), keeps
the file in the store, and returns plain data. A file that is empty, not audio, corrupt or
truncated comes back as quarantined with the reason; nothing here raises for a bad file.

Stream facts, length and integrity come from the demuxer (PyAV) and tags from mutagen, except
for FLAC and Ogg when no fingerprint is taken: those are proven whole from their own
checksums by native.probe, with the same results (tests hold the two paths to it), and go to
the demuxer only when that proof fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundkeep.audio import fingerprint as fpmod
from soundkeep.audio import native, store

AUDIO_EXTENSIONS = ("flac", "ogg", "oga", "opus", "mp3", "m4a", "mp4", "aac", "wav")
# Seconds of audio demuxed and decoded at the end of a file to find where it really ends.
TAIL_SECONDS = 1.0
# Packets decoded at the end of a file to check that they are whole. A FLAC frame decodes on
# its own; other codecs (Vorbis, AAC, MP3) need packets before the last to warm up after a seek.
TAIL_PACKETS = 4
TAIL_PACKETS_FLAC = 2
# Files smaller than this are demuxed whole rather than seeked near their end: a seek costs
# as much as demuxing a few hundred kilobytes (and the whole file is checked for holes).
SEEK_MIN_BYTES = 384 << 10
# How far the real end may fall short of the declared length before the file counts as cut.
MIN_SHORTFALL = 0.5
# A jump in packet timestamps longer than this means lost frames (Vorbis timestamps jitter by
# about 10 ms at block-size changes; one lost FLAC frame is about 90 ms).
MAX_GAP_SECONDS = 0.05
# Containers whose header gives the exact length (checked against the demuxed end); for the
# others the whole file is demuxed to find it.
_EXACT_HEADER = {"flac", "ogg", "wav", "mp4", "aiff"}
_CONTAINER_NAMES = {"mov,mp4,m4a,3gp,3g2,mj2": "mp4", "matroska,webm": "matroska"}
_CODEC_NAMES = {"mp3float": "mp3", "mp2float": "mp2", "aac_fixed": "aac"}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SPLIT_ARTISTS = re.compile(r"\s*;\s*|\s*/\s*|\x00")


@dataclass
class ScanTask:
    """What a worker needs to scan one file."""

    path: str
    size: int
    mtime_ns: int
    mode: str                     # copy | link | in_place
    root: str                     # the archive root
    fingerprint: bool
    fsync: bool = True


@dataclass
class FileResult:
    """What a scan learned about one path (plain data: crosses process boundaries)."""

    path: str
    size: int
    mtime_ns: int
    status: str = "ok"            # ok | quarantined | changed
    reason: str | None = None
    sha256: str | None = None
    container: str | None = None
    codec: str | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_ms: int | None = None
    tag_title: str | None = None
    tag_artists: list[str] = field(default_factory=list)
    tag_album: str | None = None
    tag_isrc: str | None = None
    tag_mb_recording_id: str | None = None
    tag_track_number: int | None = None
    tag_disc_number: int | None = None
    fingerprint: str | None = None
    fingerprint_raw: list[int] | None = None
    fingerprint_error: str | None = None
    stored: bool = False          # this call put the content into the store


class Refused(Exception):
    """A file the scan refuses: it goes to quarantine with this reason."""


def is_audio_name(name: str, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> bool:
    """True when a file name has one of the audio extensions (the content decides the rest)."""
    dot = name.rfind(".")
    return dot > 0 and name[dot + 1:].lower() in extensions


@dataclass
class _Staged:
    """A copy written to a temporary name, waiting for its fsync and its final name."""

    res: FileResult
    tmp: Path
    file: Any                     # the open temporary file


def probe_file(task: ScanTask, staged: list[_Staged] | None = None) -> FileResult:
    """Scan one file: hash, probe, check, read tags, fingerprint, store; never raises for it.

    A copy is written only when the store lacks the content. With `staged`, a new copy is
    left at its temporary name and listed there for commit_staged() (which syncs several
    copies together); without it, it is synced and renamed at once.
    """
    res = FileResult(task.path, task.size, task.mtime_ns)
    if task.size == 0:
        return _refuse(res, "empty file (0 bytes)")
    root = Path(task.root)
    tmp: Path | None = None
    tee = None
    reader: store.Reader | None = None
    try:
        if task.size <= store.MAX_IN_MEMORY:
            reader = store.WholeFileReader(task.path)
        else:  # streamed: the copy is written as the file is read
            if task.mode == "copy":
                tmp = store.new_tmp_path(root / "store")
                tee = open(tmp, "wb")  # noqa: SIM115 - closed below
            reader = store.HashingReader(task.path, tee)
        _probe(task, reader, res)
        sha, nbytes = reader.finish()
        st = os.stat(task.path)
        if nbytes != st.st_size or st.st_size != task.size or st.st_mtime_ns != task.mtime_ns:
            res.status, res.reason = "changed", "the file changed while it was read"
            return res
        res.sha256 = sha
        if (task.mode == "copy" and tee is None and isinstance(reader, store.WholeFileReader)
                and not (root / store.store_relpath(sha)).exists()):
            tmp = store.new_tmp_path(root / "store")
            tee = open(tmp, "wb")  # noqa: SIM115 - closed below
            tee.write(reader.data)
            tee.flush()
            if task.fsync:
                store.start_writeback(tee.fileno())
        if tee is not None and tmp is not None:
            if staged is not None:
                staged.append(_Staged(res, tmp, tee))
                tee = tmp = None
                return res
            _commit(res, tmp, tee, root, task.fsync)
            tee = tmp = None
        elif task.mode == "link":
            res.stored = store.link_into_store(task.path, root, sha)
    except Refused as exc:
        _refuse(res, str(exc))
    except OSError as exc:
        _refuse(res, f"cannot read: {exc.strerror or exc}")
    except Exception as exc:  # a tag or container parser choking on a malformed file
        _refuse(res, f"unreadable ({type(exc).__name__}: {str(exc)[:120]})")
    finally:
        if reader is not None:
            reader.close()
        if tee is not None:
            tee.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return res


def _commit(res: FileResult, tmp: Path, file: Any, root: Path, fsync: bool) -> None:
    """Sync a written copy and give it its content address (the file is closed here)."""
    try:
        file.flush()
        if fsync:
            os.fsync(file.fileno())
    finally:
        file.close()
    res.stored = store.commit_tmp(tmp, root, res.sha256 or "")


def commit_staged(staged: list[_Staged], root: str, fsync: bool) -> None:
    """Sync and rename staged copies; a copy that cannot be written quarantines its file.

    Syncing copies one after the other, once all were written and their write-back started,
    costs less than syncing each one as soon as it is written.
    """
    for st in staged:
        try:
            _commit(st.res, st.tmp, st.file, Path(root), fsync)
        except OSError as exc:
            st.tmp.unlink(missing_ok=True)
            _refuse(st.res, f"cannot store: {exc.strerror or exc}")
            st.res.stored = False


def preload_libraries() -> None:
    """Import the demuxer and tag readers now (a worker does this once, before its tasks)."""
    import av
    import mutagen.flac
    import mutagen.id3
    import mutagen.mp3
    import mutagen.mp4
    import mutagen.oggopus
    import mutagen.oggvorbis
    import mutagen.wave  # noqa: F401

    av.logging.set_level(av.logging.PANIC)


def probe_many(tasks: list[ScanTask]) -> list[FileResult]:
    """Worker entry: scan a few files (one round trip for several small ones)."""
    staged: list[_Staged] = []
    try:
        results = [probe_file(t, staged) for t in tasks]
    except BaseException:
        for st in staged:
            st.file.close()
            st.tmp.unlink(missing_ok=True)
        raise
    if staged:
        commit_staged(staged, tasks[0].root, tasks[0].fsync)
    return results


def _refuse(res: FileResult, reason: str) -> FileResult:
    res.status, res.reason, res.sha256 = "quarantined", reason, None
    return res


def _probe(task: ScanTask, reader: store.Reader, res: FileResult) -> None:
    if not task.fingerprint and isinstance(reader, store.WholeFileReader):
        # FLAC and Ogg proven whole by their own checksums need no demuxer (see native).
        try:
            facts = native.probe(reader.data, whole_check=reader.size <= SEEK_MIN_BYTES)
        except native.Damaged as exc:
            raise Refused(str(exc)) from None
        if facts is not None:
            res.container, res.codec = facts.container, facts.codec
            res.sample_rate, res.channels = facts.sample_rate, facts.channels
            res.duration_ms = round(facts.seconds * 1000)
            res.bitrate = facts.bitrate
            _vorbis_tags(facts.comments, res)
            return
    _probe_demuxed(task, reader, res)


def _probe_demuxed(task: ScanTask, reader: store.Reader, res: FileResult) -> None:
    import av

    av.logging.set_level(av.logging.PANIC)  # problems are reported as quarantine reasons
    # The format named by the first bytes spares the demuxer probing every format it knows;
    # when that demuxer refuses the file, it is opened again and probed as usual.
    hint = _format_hint(reader.pread(12, 0))
    container = None
    if hint is not None:
        with contextlib.suppress(av.FFmpegError, ValueError, OSError):
            container = av.open(reader, mode="r", format=hint, buffer_size=1 << 16)
    if container is None:
        reader.seek(0)
        try:
            container = av.open(reader, mode="r", buffer_size=1 << 16)
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise Refused(f"not a readable audio file ({_av_msg(exc)})") from None
    with container:
        if not container.streams.audio:
            raise Refused("no audio stream")
        stream = container.streams.audio[0]
        cc = stream.codec_context
        res.container = _CONTAINER_NAMES.get(container.format.name, container.format.name)
        res.codec = _CODEC_NAMES.get(cc.name, cc.name)
        res.sample_rate = int(cc.sample_rate or 0) or None
        res.channels = int(cc.channels or 0) or None
        if not res.sample_rate or not res.channels:
            raise Refused("audio stream without sample rate or channels")
        exact_header = _read_tags(reader.view(), res)
        _tags_from_demuxer(container, stream, res)
        if res.container == "ogg":
            _check_ogg_end(reader)
        elif res.container == "wav":
            _check_wav(reader)
        ends = _Ends(stream.time_base, stream.start_time or 0)
        if task.fingerprint:
            _fingerprint(container, stream, res, ends)
        duration = _duration(container, stream, exact_header, ends, reader.size)
        res.duration_ms = round(duration * 1000)
        rate = cc.bit_rate or container.bit_rate
        res.bitrate = int(rate) if rate else round(reader.size * 8 / duration)


def _format_hint(head: bytes) -> str | None:
    """The demuxer for a file starting with these bytes, for the formats with a clear magic."""
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    return None


def _av_msg(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0][:120]


def _declared(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.duration > 0:
        return _seconds(stream.duration, stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    return None


def _seconds(ticks: int, time_base: Any) -> float:
    """ticks x time_base in seconds: float(ticks * time_base) without Fraction arithmetic
    (a few of those per file cost as much as a packet's decoding); the same float."""
    return ticks * time_base.numerator / time_base.denominator


class _Ends:
    """Where the demuxed packets of one stream end, and whether they run on without a hole.

    Packets of a sequential pass must follow each other: a jump in timestamps means frames
    were lost (a demuxer skips over damaged data to the next frame it can parse).
    """

    def __init__(self, time_base: Any, start: int) -> None:
        self.tb = time_base
        self.start = start
        self.end: int | None = None
        self.last_dur = 0
        self.pts: int | None = None
        self.next_pts: int | None = None   # None right after a seek
        self.max_gap = int(MAX_GAP_SECONDS / float(time_base))

    def see(self, packet: Any) -> None:
        """Account for one packet; a hole in the timestamps refuses the file."""
        if packet.pts is None:
            return
        if self.next_pts is not None and packet.pts - self.next_pts > self.max_gap:
            gap = _seconds(packet.pts - self.next_pts, self.tb)
            at = _seconds(self.next_pts - self.start, self.tb)
            raise Refused(f"corrupt audio data: {gap:.2f} s missing at {at:.1f} s")
        self.pts = packet.pts
        self.last_dur = packet.duration or 0
        stop = packet.pts + self.last_dur
        self.next_pts = stop
        self.end = stop if self.end is None else max(self.end, stop)

    def seeked(self) -> None:
        """The next packet comes from somewhere else: do not compare it with the last one."""
        self.next_pts = None


def _duration(container: Any, stream: Any, exact_header: bool, ends: _Ends, size: int
              ) -> float:
    """The exact length in seconds: where the demuxed audio really ends (see module doc)."""
    import av

    tb = stream.time_base
    start = stream.start_time or 0
    declared = _declared(container, stream) if exact_header else None
    if declared is not None and declared > 2 * TAIL_SECONDS and size > SEEK_MIN_BYTES:
        target = start + int((declared - TAIL_SECONDS) / float(tb))
        # Where seeking fails, demux on from where we are, to the end.
        with contextlib.suppress(av.FFmpegError):
            container.seek(target, stream=stream, backward=True, any_frame=False)
            ends.seeked()
    # Demux to the end; decode only the last few packets (after a seek the decoder starts
    # cold anyway): that catches a final packet cut short at a fraction of a full decode.
    last: deque[Any] = deque(
        maxlen=TAIL_PACKETS_FLAC if stream.codec_context.name == "flac" else TAIL_PACKETS)
    try:
        for packet in container.demux(stream):
            ends.see(packet)
            if packet.size:
                last.append(packet)
        stream.codec_context.flush_buffers()
        for packet in last:
            ends.pts = packet.pts if packet.pts is not None else ends.pts
            for _frame in packet.decode():
                pass
    except av.FFmpegError as exc:
        at = None if ends.pts is None else _seconds(ends.pts - start, tb)
        if declared is not None and at is not None and declared - at > MIN_SHORTFALL:
            raise Refused(f"truncated: the audio breaks off at {at:.1f} s "
                          f"of {declared:.1f} s ({_av_msg(exc)})") from None
        where = "" if at is None else f" at {at:.1f} s"
        raise Refused(f"corrupt audio data{where} ({_av_msg(exc)})") from None
    if ends.end is None:
        raise Refused("no audio packets (zero duration)")
    real = _seconds(ends.end - start, tb)
    if real <= 0:
        raise Refused("no audio packets (zero duration)")
    if declared is not None:
        shortfall = declared - real
        if shortfall > max(MIN_SHORTFALL, 3 * _seconds(ends.last_dur, tb)):
            raise Refused(f"truncated: the audio ends at {real:.1f} s of {declared:.1f} s")
        return min(declared, real)
    return real


def _fingerprint(container: Any, stream: Any, res: FileResult, ends: _Ends) -> None:
    """Decode up to MAX_SECONDS from the start and fingerprint it (reads feed the hash)."""
    import av

    channels = 1 if (res.channels or 1) == 1 else 2
    resampler = av.AudioResampler(format="s16", layout="mono" if channels == 1 else "stereo",
                                  rate=res.sample_rate)
    limit = fpmod.MAX_SECONDS * (res.sample_rate or 1)
    decoded = 0
    tb = stream.time_base

    def blocks() -> Iterator[bytes]:
        nonlocal decoded
        packets = container.demux(stream)
        while decoded < limit:
            try:
                packet = next(packets)
                ends.see(packet)
                frames = packet.decode()
            except StopIteration:
                return
            except av.FFmpegError as exc:
                at = "" if ends.pts is None else f" at {_seconds(ends.pts, tb):.1f} s"
                raise Refused(f"corrupt audio data{at} ({_av_msg(exc)})") from None
            for frame in frames:
                for out in resampler.resample(frame):
                    yield bytes(out.planes[0])[: out.samples * 2 * channels]
                decoded += frame.samples

    try:
        fp, raw = fpmod.fingerprint_pcm(res.sample_rate or 0, channels, blocks())
        if raw:
            res.fingerprint, res.fingerprint_raw = fp, raw
        else:
            res.fingerprint_error = "too short to fingerprint"
    except Refused:
        raise
    except Exception as exc:  # chromaprint refuses very short audio: no fingerprint, no refusal
        res.fingerprint_error = str(exc)[:200] or type(exc).__name__


def _check_ogg_end(reader: store.Reader) -> None:
    """An Ogg file must end with a complete page flagged end-of-stream, else it was cut."""
    n = min(reader.size, native.OGG_MAX_PAGE + 128)
    tail = reader.pread(n, reader.size - n)
    end = len(tail)
    if end >= 128 and tail[-128:-125] == b"TAG":
        end -= 128  # an ID3v1 tag some tools append
    pos = tail.rfind(b"OggS", 0, end)
    while pos >= 0:
        if pos + 27 <= end:
            nseg = tail[pos + 26]
            if pos + 27 + nseg <= end:
                length = 27 + nseg + sum(tail[pos + 27:pos + 27 + nseg])
                if pos + length == end:
                    if not tail[pos + 5] & 0x04:
                        raise Refused("truncated: the Ogg stream has no end-of-stream page")
                    return
        pos = tail.rfind(b"OggS", 0, pos)
    raise Refused("truncated: the last Ogg page is incomplete")


def _check_wav(reader: store.Reader) -> None:
    """A WAV file's data chunk must fit in the file, else it was cut."""
    head = reader.pread(min(reader.size, 1 << 16), 0)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return  # RF64 and friends: the demuxer's own checks apply
    pos = 12
    while pos + 8 <= len(head):
        cid = head[pos:pos + 4]
        (size,) = struct.unpack_from("<I", head, pos + 4)
        if cid == b"data":
            if size not in (0, 0xFFFFFFFF) and pos + 8 + size > reader.size:
                raise Refused(f"truncated: the WAV data chunk needs {pos + 8 + size} bytes, "
                              f"the file has {reader.size}")
            return
        pos += 8 + size + (size & 1)


# -- tags -------------------------------------------------------------------------------------

def _first(values: Any) -> str | None:
    if values is None:
        return None
    if isinstance(values, list | tuple):
        values = values[0] if values else None
    if values is None:
        return None
    if isinstance(values, bytes):
        values = values.decode("utf-8", "replace")
    text = str(values).strip()
    return text or None


def _number(value: Any) -> int | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, tuple):
        value = value[0]
    if value is None:
        return None
    if isinstance(value, int):
        n = value
    else:
        m = re.match(r"\s*(\d+)", str(value))
        if not m:
            return None
        n = int(m.group(1))
    return n if 0 < n < 32768 else None


def _artists(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        for part in _SPLIT_ARTISTS.split(str(v)):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _mbid(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value if _UUID.match(value) else None


def _read_tags(source: str | store.MemoryFile, res: FileResult) -> bool:
    """Fill the tag fields with mutagen; returns whether the header gives the exact length."""
    import mutagen

    cls = _mutagen_class(res.container or "", res.codec or "")
    exact = res.container in _EXACT_HEADER
    if cls is None:
        return exact
    try:
        m = cls(source)
    except mutagen.MutagenError as exc:
        raise Refused(f"unreadable {res.container} container ({exc})") from None
    tags = m.tags
    if res.container == "mp3":
        from mutagen.mp3 import BitrateMode

        exact = m.info.bitrate_mode != BitrateMode.UNKNOWN  # a Xing/Info/VBRI header
    if tags is None:
        return exact
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if isinstance(tags, ID3):
        def text(key: str) -> list[str]:
            frame = tags.get(key)
            return [str(t) for t in frame.text] if frame is not None else []

        res.tag_title = _first(text("TIT2"))
        res.tag_artists = _artists(text("TXXX:ARTISTS") or text("TPE1"))
        res.tag_album = _first(text("TALB"))
        res.tag_isrc = _first(text("TSRC") or text("TXXX:ISRC"))
        ufid = tags.get("UFID:http://musicbrainz.org")
        res.tag_mb_recording_id = _mbid(_first(ufid.data if ufid is not None else None)
                                        or _first(text("TXXX:MusicBrainz Track Id")))
        res.tag_track_number = _number(_first(text("TRCK")))
        res.tag_disc_number = _number(_first(text("TPOS")))
    elif isinstance(tags, MP4Tags):
        def free(name: str) -> list[str]:
            vals = tags.get(f"----:com.apple.iTunes:{name}") or []
            return [bytes(v).decode("utf-8", "replace") for v in vals]

        res.tag_title = _first(tags.get("\xa9nam"))
        res.tag_artists = _artists(free("ARTISTS") or list(tags.get("\xa9ART") or []))
        res.tag_album = _first(tags.get("\xa9alb"))
        res.tag_isrc = _first(free("ISRC"))
        res.tag_mb_recording_id = _mbid(_first(free("MusicBrainz Track Id")))
        res.tag_track_number = _number(tags.get("trkn"))
        res.tag_disc_number = _number(tags.get("disk"))
    elif isinstance(tags, list):  # Vorbis comments (FLAC, Ogg Vorbis, Opus)
        _vorbis_tags(tags, res)
    else:  # APE-like dict tags
        def get(key: str) -> list[str]:
            try:
                vals = tags.get(key) or tags.get(key.upper()) or []
            except (KeyError, ValueError):
                return []
            return [str(v) for v in (vals if isinstance(vals, list) else [vals])]

        _fill_tags(get, res)
    return exact


def _vorbis_tags(pairs: list[tuple[str, str]], res: FileResult) -> None:
    """Fill the tag fields from Vorbis comments, keys case-folded as the format specifies."""
    by_key: dict[str, list[str]] = {}
    for k, v in pairs:
        by_key.setdefault(str(k).lower(), []).append(str(v))
    _fill_tags(lambda key: by_key.get(key, []), res)


def _fill_tags(get: Callable[[str], list[str]], res: FileResult) -> None:
    res.tag_title = _first(get("title"))
    res.tag_artists = _artists(get("artists") or get("artist"))
    res.tag_album = _first(get("album"))
    res.tag_isrc = _first(get("isrc"))
    res.tag_mb_recording_id = _mbid(_first(get("musicbrainz_trackid")))
    res.tag_track_number = _number(_first(get("tracknumber")))
    res.tag_disc_number = _number(_first(get("discnumber")))


def _tags_from_demuxer(container: Any, stream: Any, res: FileResult) -> None:
    """Fill tags mutagen did not find (e.g. RIFF INFO chunks in WAV) from the demuxer's view."""
    meta = {str(k).lower(): v for k, v in {**dict(stream.metadata),
                                            **dict(container.metadata)}.items()}
    res.tag_title = res.tag_title or _first(meta.get("title"))
    if not res.tag_artists and meta.get("artist"):
        res.tag_artists = _artists([meta["artist"]])
    res.tag_album = res.tag_album or _first(meta.get("album"))
    res.tag_isrc = res.tag_isrc or _first(meta.get("isrc"))
    res.tag_mb_recording_id = res.tag_mb_recording_id or _mbid(
        _first(meta.get("musicbrainz_trackid") or meta.get("musicbrainz track id")))


def _mutagen_class(container: str, codec: str) -> Any:
    """The mutagen reader for what the demuxer found (content, not the file name, decides)."""
    if container == "flac":
        from mutagen.flac import FLAC
        return FLAC
    if container == "ogg":
        from mutagen import oggflac, oggopus, oggspeex, oggvorbis
        return {"vorbis": oggvorbis.OggVorbis, "opus": oggopus.OggOpus,
                "flac": oggflac.OggFLAC, "speex": oggspeex.OggSpeex}.get(codec)
    if container == "mp3":
        from mutagen.mp3 import MP3
        return MP3
    if container == "mp4":
        from mutagen.mp4 import MP4
        return MP4
    if container == "wav":
        from mutagen.wave import WAVE
        return WAVE
    if container == "aiff":
        from mutagen.aiff import AIFF
        return AIFF
    return None
