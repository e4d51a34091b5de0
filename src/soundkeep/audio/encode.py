"""The encode task: one track's file, re-encoded or kept, tagged, verified, stored.

encode_one(job) is the only function executors call. It takes and returns plain data, runs
the same in a local worker process or on a Ray node (the archive on shared storage), and
never raises for a problem with one file: it returns a result with status "failed" and the
reason, and leaves the original untouched.

What it writes are new store objects, store/ab/cd/<sha256 of the output>: the original
stays in the store under its own hash. An `original`-tier output is the original's audio
bytes with embedded metadata, plus a restore patch (also a store object) that rebuilds the
original's exact bytes from it. Outputs are written under a temporary name in the store's
scratch directory, fsynced, and renamed to their content address, so a kill leaves either
nothing or a complete file. Opus encoding is bit-exact (the Ogg muxer's serial number and
vendor string are fixed), so the same job gives the same bytes on every run with the same
libraries on the same kind of CPU (float code paths may differ between CPU families).

Every output is verified before it counts: it is decoded from start to end (an error FFmpeg
reports, even one it skips over, fails it), its duration must be within 50 ms of the
original's, and it must not be silent where the original is not. The original is checked
too: its sha256 must match the catalog, and it must decode to the length it declares.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import numpy as np
from numpy.typing import NDArray

from soundkeep.audio.loudness import Loudness, LoudnessMeter
from soundkeep.audio.restore import apply_patch, make_patch
from soundkeep.audio.store import commit_tmp, store_relpath
from soundkeep.audio.tags import (
    RESERVED_KEY,
    Cover,
    TagError,
    TrackTags,
    embedded_cover,
    reserve_bytes,
    write_tags,
)
from soundkeep.errors import InputError

OPUS_RATE = 48000
DURATION_TOLERANCE_S = 0.050
# A file decoding to less than its declared length, minus this slack, is damaged.
DECLARED_SLACK_S, DECLARED_SLACK = 0.5, 0.02
# At or below this sample peak a signal counts as silence (about one 16-bit step, -90 dBFS).
SILENCE_PEAK = 10 ** (-90 / 20)
# Inside store/: a folder of its own, apart from the scan's temporary files.
TMP_SUBDIR = ".tmp/encode"
# Decoded audio is handled in chunks of this many samples (see _Chunks).
CHUNK_SAMPLES = 48000

STATUS_ENCODED = "encoded"
STATUS_KEPT = "kept_original"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class EncodeJob:
    """One track to carry out: which file, what to do with it, and the tags to embed."""

    track_id: int
    tier: str
    codec: str  # "original" (keep the audio bytes) or "opus"
    source_sha256: str
    source_path: str  # absolute
    archive_root: str  # absolute; outputs go to <archive_root>/store/...
    tags: TrackTags
    bitrate: int | None = None  # bit/s, for re-encodes
    vbr: bool = True
    cover_path: str | None = None  # a catalog cover; else the picture the original carries

    @property
    def params(self) -> str:
        """What was asked, as recorded in the journal: a change means a new job."""
        return params_for(self.codec, self.bitrate, self.vbr)


def params_for(codec: str, bitrate: int | None, vbr: bool) -> str:
    """The journal's parameter string for a tier: 'original' or 'opus 75000 vbr'."""
    if codec == "original":
        return "original"
    return f"{codec} {bitrate} {'vbr' if vbr else 'cbr'}"


@dataclass
class EncodeResult:
    """What happened to one job; the run records it in the journal."""

    track_id: int
    tier: str
    params: str
    source_sha256: str
    status: str = STATUS_FAILED
    reason: str | None = None
    source_size: int | None = None
    source_duration_ms: int | None = None
    output_sha256: str | None = None
    output_path: str | None = None
    output_size: int | None = None
    patch_sha256: str | None = None
    patch_path: str | None = None
    patch_size: int | None = None
    codec: str | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_ms: int | None = None
    loudness_lufs: float | None = None
    replaygain_db: float | None = None
    sample_peak: float | None = None
    tags_sha256: str | None = None
    seconds: float = 0.0
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @property
    def ok(self) -> bool:
        """Whether the output counts (verified and stored)."""
        return self.status in (STATUS_ENCODED, STATUS_KEPT)

    @property
    def audio_seconds(self) -> float:
        """Length of the original's audio (0 when it could not be decoded)."""
        return (self.source_duration_ms or 0) / 1000


class _Fail(Exception):
    """One file's failure: a short code and the detail, recorded as 'code: detail'."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


def encode_one(job: EncodeJob) -> EncodeResult:
    """Carry out one job; every problem with the file becomes a failed result, never a raise."""
    started = time.perf_counter()
    res = EncodeResult(track_id=job.track_id, tier=job.tier, params=job.params,
                       source_sha256=job.source_sha256, tags_sha256=job.tags.digest())
    scratch: list[Path] = []
    try:
        src = Path(job.source_path)
        if not src.is_file():
            raise _Fail("missing_source", f"no file at {src}")
        if job.codec == "original":
            _keep_original(job, src, res, scratch)
        elif job.codec == "opus":
            _reencode_opus(job, src, res, scratch)
        else:
            raise _Fail("unsupported_codec", job.codec)
    except _Fail as exc:
        res.status, res.reason = STATUS_FAILED, str(exc)
    except Exception as exc:  # one file's surprise must not stop a run of millions
        res.status, res.reason = STATUS_FAILED, f"error: {type(exc).__name__}: {exc}"
    finally:
        for p in scratch:
            p.unlink(missing_ok=True)
    if not res.ok:
        for key in ("output_sha256", "output_path", "output_size", "patch_sha256",
                    "patch_path", "patch_size"):
            setattr(res, key, None)
    res.seconds = time.perf_counter() - started
    return res


# -- the two ways to keep a track ---------------------------------------------------------

def _reencode_opus(job: EncodeJob, src: Path, res: EncodeResult, scratch: list[Path]) -> None:
    root = Path(job.archive_root)
    digest = _sha256_file(src)
    _check_source(job, digest, src, res)
    cover = _cover(job, src)
    tmp = _tmp_path(root, job.track_id, ".opus")
    scratch.append(tmp)
    with _open_audio(src) as (inp, ast, layout):
        meter = LoudnessMeter(OPUS_RATE, [c.name for c in layout.channels])
        chunks = _Chunks(inp, ast, av.AudioResampler(format="flt", layout=layout,
                                                     rate=OPUS_RATE))
        out = av.open(str(tmp), "w", format="ogg", options={"fflags": "+bitexact"})
        with out:
            try:
                ost = out.add_stream("libopus", rate=OPUS_RATE)
                ost.layout = layout
                ost.bit_rate = int(job.bitrate or 0)
                ost.codec_context.options = {"vbr": "on" if job.vbr else "off"}
                ost.codec_context.flags |= av.codec.context.Flags.bitexact
                # Room for the tags written after encoding, so writing them moves no page.
                ost.metadata[RESERVED_KEY] = "-" * reserve_bytes(job.tags, cover)
            except (av.FFmpegError, ValueError) as exc:
                raise _Fail("encode_error", _msg(exc)) from None
            written = 0
            with _ffmpeg_errors("decode_error"):
                for chunk in chunks:
                    written = _encode(out, ost, chunk, written, meter)
            try:
                for packet in ost.encode(None):
                    out.mux(packet)
            except av.FFmpegError as exc:
                raise _Fail("encode_error", _msg(exc)) from None
        seconds = chunks.seconds
        _check_complete(inp, seconds)
    loudness = meter.result()
    _record_source(res, seconds, loudness)
    try:
        write_tags(tmp, job.tags, loudness, cover, keep_size=True)
    except TagError as exc:
        raise _Fail("tag_error", exc.message) from None
    out_seconds, rate, channels = _verify(tmp, seconds, loudness.sample_peak)
    res.codec, res.bitrate, res.sample_rate, res.channels = "opus", job.bitrate, rate, channels
    res.duration_ms = round(out_seconds * 1000)
    res.output_sha256, res.output_size = _sha256_file(tmp), tmp.stat().st_size
    res.output_path = _commit(tmp, root, res.output_sha256)
    res.status = STATUS_ENCODED


def _keep_original(job: EncodeJob, src: Path, res: EncodeResult, scratch: list[Path]) -> None:
    root = Path(job.archive_root)
    original = src.read_bytes()
    _check_source(job, hashlib.sha256(original).hexdigest(), src, res)
    seconds, loudness, fmt = _measure(src)
    _record_source(res, seconds, loudness)
    cover = Cover.from_file(Path(job.cover_path)) if job.cover_path else None
    tmp = _tmp_path(root, job.track_id, src.suffix)
    scratch.append(tmp)
    tmp.write_bytes(original)
    try:
        write_tags(tmp, job.tags, loudness, cover)
    except TagError as exc:
        raise _Fail("tag_error", exc.message) from None
    tagged = tmp.read_bytes()
    patch = make_patch(original, tagged)
    try:
        apply_patch(tagged, patch)
    except InputError as exc:
        raise _Fail("restore_mismatch", exc.message) from None
    out_seconds, rate, channels = _verify(tmp, seconds, loudness.sample_peak)
    res.codec, res.sample_rate, res.channels = fmt, rate, channels
    res.duration_ms = round(out_seconds * 1000)
    patch_sha = hashlib.sha256(patch).hexdigest()
    ptmp = _tmp_path(root, job.track_id, ".patch")
    scratch.append(ptmp)
    ptmp.write_bytes(patch)
    res.patch_sha256, res.patch_size = patch_sha, len(patch)
    res.patch_path = _commit(ptmp, root, patch_sha)
    res.output_sha256, res.output_size = hashlib.sha256(tagged).hexdigest(), len(tagged)
    res.output_path = _commit(tmp, root, res.output_sha256)
    res.status = STATUS_KEPT


# -- pieces ---------------------------------------------------------------------------------

def _check_source(job: EncodeJob, digest: str, src: Path, res: EncodeResult) -> None:
    if digest != job.source_sha256:
        raise _Fail("source_changed", f"{src} has sha256 {digest}, the catalog says "
                                      f"{job.source_sha256}")
    res.source_size = src.stat().st_size


def _record_source(res: EncodeResult, seconds: float, loudness: Loudness) -> None:
    res.source_duration_ms = round(seconds * 1000)
    res.loudness_lufs = loudness.integrated_lufs
    res.replaygain_db = loudness.replaygain_db()
    res.sample_peak = loudness.sample_peak


def _cover(job: EncodeJob, src: Path) -> Cover | None:
    if job.cover_path:
        return Cover.from_file(Path(job.cover_path))
    return embedded_cover(src)


# FFmpeg's default layout for a channel count (what a file without a layout is taken as).
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1",
                    8: "7.1"}


def _layout(stream: av.audio.stream.AudioStream) -> av.AudioLayout:
    layout = stream.layout
    channels = stream.codec_context.channels
    if channels <= 0:
        raise _Fail("decode_error", "the audio stream has no channels")
    if layout.nb_channels == channels and layout.name and "channels" not in layout.name:
        return layout
    name = _DEFAULT_LAYOUTS.get(channels)
    if name is None:
        raise _Fail("unsupported_layout", f"{channels} channels without a channel layout")
    return av.AudioLayout(name)


def _decode(container: av.container.InputContainer, stream: av.audio.stream.AudioStream
            ) -> Iterator[av.AudioFrame]:
    """Frames of a stream; a decoder error becomes a decode_error failure."""
    try:
        for packet in container.demux(stream):
            yield from packet.decode()
    except av.FFmpegError as exc:
        raise _Fail("decode_error", _msg(exc)) from None


class _Chunks:
    """A stream's decoded audio in chunks of about CHUNK_SAMPLES, converted by a resampler.

    Decoded frames (often 1,024 samples or fewer) are gathered in an AudioFifo first, so the
    per-call costs of resampling, arrays and encoding are paid per chunk, not per frame.
    `seconds` is the length decoded so far.
    """

    def __init__(self, inp: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                 resampler: av.AudioResampler) -> None:
        self.inp, self.stream, self.resampler = inp, stream, resampler
        self.seconds = 0.0

    def __iter__(self) -> Iterator[av.AudioFrame]:
        fifo = av.AudioFifo()
        for frame in _decode(self.inp, self.stream):
            self.seconds += frame.samples / frame.sample_rate
            frame.pts = None  # the FIFO checks timestamps for gaps; the sample count is what counts
            try:
                fifo.write(frame)
            except ValueError as exc:
                raise _Fail("decode_error", f"the audio format changes mid-stream: {exc}"
                            ) from None
            if fifo.samples >= CHUNK_SAMPLES:
                yield from _resample(self.resampler, fifo.read(CHUNK_SAMPLES))
        if fifo.samples:
            yield from _resample(self.resampler, fifo.read())
        yield from _resample(self.resampler, None)


def _resample(resampler: av.AudioResampler, frame: av.AudioFrame | None
              ) -> list[av.AudioFrame]:
    try:
        return resampler.resample(frame)
    except (av.FFmpegError, ValueError) as exc:
        raise _Fail("decode_error", f"cannot convert the audio: {_msg(exc)}") from None


def _encode(out: av.container.OutputContainer, ost: av.audio.stream.AudioStream,
            frame: av.AudioFrame, written: int, meter: LoudnessMeter) -> int:
    data = memoryview(frame.planes[0])
    meter.add_interleaved(np.frombuffer(data, np.float32, frame.samples * meter.channels))
    # Timestamps from a sample count: the output starts at 0 whatever the original's offset.
    frame.pts = written
    frame.time_base = Fraction(1, OPUS_RATE)
    try:
        for packet in ost.encode(frame):
            out.mux(packet)
    except av.FFmpegError as exc:
        raise _Fail("encode_error", _msg(exc)) from None
    return written + frame.samples


@contextmanager
def _open_audio(src: Path) -> Iterator[tuple[av.container.InputContainer,
                                             av.audio.stream.AudioStream, av.AudioLayout]]:
    """Open a file's first audio stream; what cannot be opened is a decode failure."""
    try:
        inp = av.open(str(src))
    except av.FFmpegError as exc:
        raise _Fail("decode_error", _msg(exc)) from None
    with inp:
        if not inp.streams.audio:
            raise _Fail("no_audio", "the file has no audio stream")
        ast = inp.streams.audio[0]
        yield inp, ast, _layout(ast)


def _measure(src: Path) -> tuple[float, Loudness, str]:
    """Decode a file whole: its duration, loudness and peak, and its codec name."""
    with _open_audio(src) as (inp, ast, layout):
        rate = ast.codec_context.sample_rate or ast.rate
        meter = LoudnessMeter(rate, [c.name for c in layout.channels])
        chunks = _Chunks(inp, ast, av.AudioResampler(format="fltp", layout=layout, rate=rate))
        with _ffmpeg_errors("decode_error"):
            for chunk in chunks:
                meter.add_planar(_planar(chunk))
        codec = ast.codec_context.name
        _check_complete(inp, chunks.seconds)
    return chunks.seconds, meter.result(), codec


def _planar(frame: av.AudioFrame) -> NDArray[np.float32]:
    arr = frame.to_ndarray()  # fltp: (channels, samples)
    return arr.astype(np.float32, copy=False)


@contextmanager
def _ffmpeg_errors(code: str) -> Iterator[None]:
    """Fail with `code` when FFmpeg reports an error while decoding, even one it skips over
    (a damaged frame is logged and dropped, not raised), like `ffmpeg -v error -f null`."""
    old = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            yield
    finally:
        av.logging.set_level(old)
    errors = [entry for entry in logs if entry[0] <= av.logging.ERROR]
    if errors:
        _level, name, message = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _Fail(code, f"{name}: {str(message).strip()}{more}")


def _check_complete(inp: av.container.InputContainer, seconds: float) -> None:
    """The decoded audio must not be much shorter than the file says it is (a decoder skips
    garbage silently); some headers only estimate, hence the slack."""
    declared = (inp.duration or 0) / 1_000_000
    if declared and seconds < declared - max(DECLARED_SLACK_S, DECLARED_SLACK * declared):
        raise _Fail("decode_error", f"decoded {seconds:.3f} s of the {declared:.3f} s the "
                                    f"file declares")
    if seconds <= 0:
        raise _Fail("zero_duration", "the original decodes to no audio")


def _frame_peak(frame: av.AudioFrame) -> float:
    arr = frame.to_ndarray()
    if arr.size == 0:
        return 0.0
    if arr.dtype.kind == "f":
        return float(np.abs(arr).max())
    if arr.dtype.kind == "u":  # u8 is offset binary
        return float(np.abs(arr.astype(np.int16) - 128).max()) / 128
    return float(np.abs(arr.astype(np.float64)).max()) / float(2 ** (arr.dtype.itemsize * 8 - 1))


def _verify(path: Path, want_seconds: float, source_peak: float) -> tuple[float, int, int]:
    """Decode an output from start to end; check its duration and that it is not silent."""
    seconds, loud = 0.0, False
    try:
        with av.open(str(path)) as inp, _ffmpeg_errors("verify_decode"):
            if not inp.streams.audio:
                raise _Fail("verify_decode", "the output has no audio stream")
            ast = inp.streams.audio[0]
            for packet in inp.demux(ast):
                for frame in packet.decode():
                    seconds += frame.samples / frame.sample_rate
                    if not loud and _frame_peak(frame) > SILENCE_PEAK:
                        loud = True
            rate, channels = ast.codec_context.sample_rate, ast.codec_context.channels
    except av.FFmpegError as exc:
        raise _Fail("verify_decode", _msg(exc)) from None
    if abs(seconds - want_seconds) > DURATION_TOLERANCE_S:
        raise _Fail("verify_duration", f"the output lasts {seconds:.3f} s, the original "
                                       f"{want_seconds:.3f} s")
    if source_peak > SILENCE_PEAK and not loud:
        raise _Fail("verify_silent", "the output is silent, the original is not")
    return seconds, rate, channels


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _tmp_path(root: Path, track_id: int, suffix: str) -> Path:
    d = root / "store" / TMP_SUBDIR
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{track_id}-{os.getpid()}-{secrets.token_hex(4)}{suffix}.part"


def _commit(tmp: Path, root: Path, sha256: str) -> str:
    """fsync, then rename into the store (once: an existing object is the same bytes)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    commit_tmp(tmp, root, sha256)
    return store_relpath(sha256)


def _msg(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def warm_up(_: object = None) -> int:
    """Nothing but loading this module (codecs, numpy) in a worker; returns the worker's pid."""
    return os.getpid()


def tmp_dir(archive_root: Path) -> Path:
    """The encode step's scratch directory inside the store."""
    return archive_root / "store" / TMP_SUBDIR


def clean_tmp(archive_root: Path) -> int:
    """Remove what a killed run left in the scratch directory; returns how many files."""
    d = tmp_dir(archive_root)
    removed = 0
    if d.is_dir():
        for p in d.iterdir():
            if p.name.endswith(".part"):
                p.unlink(missing_ok=True)
                removed += 1
    return removed
