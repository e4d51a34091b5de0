"""FLAC and Ogg (Vorbis, Opus) proven whole from their own structure, without a decoder.

A scan without fingerprints needs of a file its stream facts, its exact length, its tags and
whether it is whole. FLAC and Ogg carry checksums that answer the last question at memory
speed, so for them opening the demuxer (about 0.5 ms a file, more than hashing a short sample)
is only needed when something is wrong:

- FLAC: STREAMINFO gives rate, channels and the exact sample count. Every frame ends with a
  CRC-16 of itself, so the CRC-16 of all frames together is 0 exactly when (up to a chance of
  2^-16) every frame is intact; the last frame's header must end the stream at the sample
  count of STREAMINFO, else the file was cut at a frame boundary.
- Ogg: every page has a CRC-32 and a sequence number. The identification and comment headers
  are read from the first pages; the last page must be complete, flagged end-of-stream and
  carry the final granule position (the exact length). A file shorter than
  probe.SEEK_MIN_BYTES has every page checked, as the demuxer would read it whole; a longer
  one its header pages and its last page, as the demuxer would seek to its end.

probe() answers "proven whole" with the facts; anything unusual, and most damage, returns
None and the scan asks the demuxer, which names what is wrong. The one exception is damage the
demuxer would play over: an Ogg page missing or failing its CRC inside a file checked whole
raises Damaged.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from fastcrc import crc8, crc16, crc32

# Frame block sizes by the 4-bit code of a FLAC frame header (0: reserved; 6, 7: in the header).
_BLOCK_SIZES = (0, 192, 576, 1152, 2304, 4608, -8, -16, 256, 512, 1024, 2048, 4096, 8192,
                16384, 32768)
# How far before the end the last FLAC frame may start when STREAMINFO gives no maximum.
_MAX_FRAME = 1 << 20
_OGG_HEADER = struct.Struct("<4sBBqIIIB")
OGG_MAX_PAGE = 27 + 255 + 255 * 255  # header, 255 lacing values, 255 segments of 255 bytes
_SYNC = re.compile(rb"\xff[\xf8\xf9]")
_OPUS_RATE = 48000


class Damaged(Exception):
    """Damage the checksums prove and the demuxer would play over (the reason says where)."""


@dataclass(slots=True)
class Facts:
    """What probe() learned: stream facts, exact length and the Vorbis comments."""

    container: str
    codec: str
    sample_rate: int
    channels: int
    seconds: float
    bitrate: int | None
    comments: list[tuple[str, str]]


def probe(data: memoryview, whole_check: bool) -> Facts | None:
    """The facts of a FLAC or Ogg Vorbis/Opus file proven whole, else None (ask the demuxer).

    whole_check: check every Ogg page (FLAC is always checked whole: it costs nothing).
    Raises Damaged for a damaged or missing Ogg page (see the module doc).
    """
    head = bytes(data[:4])
    try:
        if head == b"fLaC":
            return _flac(data, whole_check)
        if head == b"OggS":
            return _ogg(data, whole_check)
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        return None
    return None


# -- FLAC ---------------------------------------------------------------------------------------

def _flac(data: memoryview, whole_check: bool) -> Facts | None:
    size = len(data)
    pos = 4
    info: bytes | None = None
    comments: list[tuple[str, str]] = []
    seen_comments = last = False
    while not last:
        if pos + 4 > size:
            return None
        kind = data[pos] & 0x7F
        last = bool(data[pos] & 0x80)
        length = int.from_bytes(data[pos + 1:pos + 4], "big")
        body = pos + 4
        if body + length > size:
            return None
        if kind == 0:
            if info is not None or length != 34:
                return None
            info = bytes(data[body:body + 34])
        elif info is None or kind == 127:
            return None  # STREAMINFO not first, or an invalid block type
        elif kind == 4:
            if seen_comments:
                return None  # two comment blocks: the tag reader refuses the file
            comments, seen_comments = _comments(data[body:body + length]), True
        pos = body + length
    if info is None:
        return None
    min_block, max_block = struct.unpack_from(">HH", info, 0)
    max_frame = int.from_bytes(info[7:10], "big")
    packed = int.from_bytes(info[10:18], "big")
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    total = packed & ((1 << 36) - 1)
    if rate == 0 or total == 0 or max_block < 16:
        return None
    first = _frame_header(data, pos)
    if first is None or first[0] != 0:
        return None
    # Every frame ends with the CRC-16 of itself: over all of them the register ends at 0.
    if crc16.umts(data[pos:]) != 0:
        return None
    final = _last_frame(data, pos, size, max_frame, min_block, max_block)
    if final is None or final[0] != total:
        return None
    min_frame = int.from_bytes(info[4:7], "big")
    if whole_check and not _frames_in_sequence(data, pos, final[1], min_frame):
        return None
    seconds = total / rate
    return Facts("flac", "flac", rate, channels, seconds, _bitrate(size, total, rate), comments)


def _frame_header(data: memoryview, pos: int) -> tuple[int, int, bool] | None:
    """(coded number, block size, variable blocking) of a valid frame header at pos, or None."""
    try:
        return _parse_frame_header(data, pos)
    except IndexError:  # a sync code too near the end to hold a header
        return None


def _parse_frame_header(data: memoryview, pos: int) -> tuple[int, int, bool] | None:
    if len(data) < pos + 6 or data[pos] != 0xFF or data[pos + 1] & 0xFE != 0xF8:
        return None
    variable = bool(data[pos + 1] & 1)
    bs_code, sr_code = data[pos + 2] >> 4, data[pos + 2] & 0xF
    if bs_code == 0 or sr_code == 15 or data[pos + 3] >> 4 >= 11 or data[pos + 3] & 1:
        return None
    number, p = _coded_number(data, pos + 4)
    if number < 0:
        return None
    block = _BLOCK_SIZES[bs_code]
    if block == -8:
        block = data[p] + 1
        p += 1
    elif block == -16:
        block = int.from_bytes(data[p:p + 2], "big") + 1
        p += 2
    p += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if p >= len(data) or crc8.smbus(data[pos:p]) != data[p]:
        return None
    return number, block, variable


def _frames_in_sequence(data: memoryview, start: int, last_number: int, min_frame: int
                        ) -> bool:
    """Whether the frames from start on are numbered without a gap up to the last one. The
    CRC over all frames cannot see a frame missing whole; the demuxer reading a small file
    whole would. Frames of a fixed block size share their first three header bytes (the
    last frame may not), so those are found at C speed and only their numbers are read; the
    rare variable block size reads every candidate header."""
    raw = bytes(data[start:])
    if raw[1] == 0xF9:  # variable block size: numbers are sample numbers
        expected, pattern = 0, _SYNC
        for m in pattern.finditer(raw):
            hdr = _frame_header(data, start + m.start())
            if hdr is not None:
                if hdr[0] != expected:
                    return False
                expected = hdr[0] + hdr[1]
        return expected > 0
    head, expected, at = raw[:3], 0, 0
    while at >= 0:
        if _coded_number(raw, at + 4)[0] != expected:
            return False  # a frame missing, or sync bytes inside audio data: ask the demuxer
        expected += 1
        at = raw.find(head, at + max(min_frame, 6))
    return expected - 1 in (last_number, last_number - 1)


def _coded_number(raw: bytes | memoryview, p: int) -> tuple[int, int]:
    """(the frame or sample number at p, coded like UTF-8 in 1 to 7 bytes, the position after
    it), or (-1, p)."""
    b0 = raw[p] if p < len(raw) else 0xFF
    if b0 < 0x80:
        return b0, p + 1
    extra = 0
    while extra < 7 and b0 & (0x80 >> extra):
        extra += 1
    if extra in (1, 7) or p + extra > len(raw):
        return -1, p
    number = b0 & (0x7F >> extra)
    for b in raw[p + 1:p + extra]:
        if b & 0xC0 != 0x80:
            return -1, p
        number = (number << 6) | (b & 0x3F)
    return number, p + extra


def _last_frame(data: memoryview, start: int, size: int, max_frame: int, min_block: int,
                max_block: int) -> tuple[int, int] | None:
    """(the sample where the last frame ends, its coded number): the last header from which
    the frames to the end check out (a sync pattern inside audio data fails its CRCs)."""
    lo = max(start, size - (max_frame + 16 if max_frame else _MAX_FRAME))
    tail = bytes(data[lo:])
    limit = len(tail) - 2  # the last position a sync code may start at
    while limit >= 0:
        at = max(tail.rfind(b"\xff\xf8", 0, limit + 2), tail.rfind(b"\xff\xf9", 0, limit + 2))
        if at < 0:
            return None
        limit = at - 1
        hdr = _frame_header(data, lo + at)
        if hdr is not None and crc16.umts(data[lo + at:]) == 0:
            number, block, variable = hdr
            if variable:
                return number + block, number
            if min_block != max_block and lo + at != start:
                return None  # a fixed block size that is not fixed: let the demuxer judge
            return number * max_block + block, number
    return None


# -- Ogg ------------------------------------------------------------------------------------

def _ogg_crc(page: memoryview) -> int:
    """The CRC of an Ogg page (its own CRC field read as zeros): CRC-32/CKSUM without xor-out."""
    buf = bytearray(page)
    buf[22:26] = b"\0\0\0\0"
    return int(crc32.cksum(buf)) ^ 0xFFFFFFFF


def _page(data: memoryview, pos: int) -> tuple[int, int, int, int, int, bytes] | None:
    """(flags, granule, serial, sequence, page length, lacing values) of a whole, valid page."""
    if pos + 27 > len(data):
        return None
    magic, version, flags, granule, serial, seq, crc, nseg = _OGG_HEADER.unpack_from(data, pos)
    if magic != b"OggS" or version != 0 or pos + 27 + nseg > len(data):
        return None
    lacing = bytes(data[pos + 27:pos + 27 + nseg])
    length = 27 + nseg + sum(lacing)
    if pos + length > len(data) or _ogg_crc(data[pos:pos + length]) != crc:
        return None
    return flags, granule, serial, seq, length, lacing


def _runs_past_end(data: memoryview, pos: int) -> bool:
    """Whether the page starting at pos is longer than what is left of the file."""
    if pos + 27 > len(data) or bytes(data[pos:pos + 4]) != b"OggS":
        return pos + 27 > len(data)
    nseg = data[pos + 26]
    return pos + 27 + nseg > len(data) or \
        pos + 27 + nseg + sum(bytes(data[pos + 27:pos + 27 + nseg])) > len(data)


def _ogg(data: memoryview, whole_check: bool) -> Facts | None:
    size = len(data)
    first = _page(data, 0)
    if first is None:
        return None
    flags, _granule, serial, seq, length, lacing = first
    if not flags & 0x02 or flags & 0x01 or seq != 0:
        return None  # not a beginning of stream
    ident = bytes(data[27 + len(lacing):length])
    if ident.startswith(b"\x01vorbis") and len(ident) >= 30:
        codec = "vorbis"
        version, channels, rate, _bmax, nominal = struct.unpack_from("<IBIii", ident, 7)
        if version != 0 or nominal < 0:
            return None
        pre_skip = 0
        bitrate: int | None = nominal or None
        comment_magic = b"\x03vorbis"
        max_packet = (1 << (ident[28] >> 4)) // 2  # samples: half the long block
    elif ident.startswith(b"OpusHead") and len(ident) >= 19:
        codec = "opus"
        channels = ident[9]
        pre_skip = struct.unpack_from("<H", ident, 10)[0]
        rate, bitrate, comment_magic = _OPUS_RATE, None, b"OpusTags"
        max_packet = 0  # counted exactly from each packet's TOC byte
    else:
        return None
    if not channels or not rate:
        return None
    # The comment header: the second packet, from the next pages (it may span several).
    pos, seq_next = length, 1
    packet = bytearray()
    while True:
        page = _page(data, pos)
        if page is None:
            return None
        p_flags, _g, p_serial, p_seq, p_len, p_lacing = page
        if p_serial != serial or p_seq != seq_next or p_flags & 0x02:
            return None
        body = pos + 27 + len(p_lacing)
        rest = None  # what the page holds after the comment header
        for at, lace in enumerate(p_lacing):
            packet += data[body:body + lace]
            body += lace
            if lace < 255:
                rest = p_lacing[at + 1:]
                break
        pos += p_len
        seq_next += 1
        if rest is not None:
            break
    if not packet.startswith(comment_magic):
        return None
    comments = _comments(memoryview(packet)[len(comment_magic):], framing=codec == "vorbis")
    if codec == "vorbis" and not (rest and rest[-1] < 255):
        # The setup header, which ends a page, did not end on the comment header's page.
        while True:
            page = _page(data, pos)
            if page is None or page[2] != serial or page[3] != seq_next:
                return None
            pos += page[4]
            seq_next += 1
            if page[5] and page[5][-1] < 255:
                break
    audio_pos, audio_seq = pos, seq_next
    last_flags, last_granule = 0, 0  # no audio page: not proven
    if whole_check:
        while pos < size:  # every page: whole, its CRC right, none missing, one stream
            page = _page(data, pos)
            if page is None and (bytes(data[pos:pos + 4]) != b"OggS"
                                 or _runs_past_end(data, pos)):
                return None  # trailing bytes (an ID3v1 tag?) or cut short: the demuxer says
            if page is not None and page[2] != serial:
                return None  # several streams (chained or multiplexed): the demuxer's job
            if page is None or page[3] != seq_next:
                # The demuxer would resynchronise and play on over the hole.
                raise Damaged(f"corrupt audio data: Ogg page {seq_next} (at byte {pos}) is "
                              "damaged or missing")
            last_flags, last_granule = page[0], page[1]
            pos += page[4]
            seq_next += 1
    else:
        found = _last_pages(data, serial)
        if found is None:
            return None
        last_flags, last_granule = found
    if not last_flags & 0x04 or last_granule <= pre_skip:
        return None
    if not _starts_at_zero(data, audio_pos, serial, audio_seq, codec, max_packet):
        return None
    seconds = (last_granule - pre_skip) / rate
    if bitrate is None:  # over the length with the pre-skip, as the demuxer counts it
        bitrate = _bitrate(size, last_granule, rate)
    return Facts("ogg", codec, rate, channels, seconds, bitrate, comments)


# Samples per Opus frame at 48 kHz by TOC configuration (RFC 6716, 3.1): SILK 10-60 ms,
# hybrid 10-20 ms, CELT 2.5-20 ms.
_OPUS_FRAME = (480, 960, 1920, 2880) * 3 + (480, 960) * 2 + (120, 240, 480, 960) * 4


def _opus_samples(packet: bytes) -> int:
    """Samples at 48 kHz in one Opus packet, from its TOC byte (and frame count byte)."""
    toc = packet[0]
    code = toc & 3
    frames = 1 if code == 0 else 2 if code in (1, 2) else packet[1] & 0x3F
    return _OPUS_FRAME[toc >> 3] * frames


def _starts_at_zero(data: memoryview, pos: int, serial: int, seq: int, codec: str,
                    max_packet: int) -> bool:
    """Whether the audio starts at granule 0: the first audio page (at pos: a fresh page, by
    both specifications) ends no later than its packets reach. A stream cut from a longer one
    (a radio recording) keeps the original's granules; the demuxer subtracts the start."""
    page = _page(data, pos)
    if page is None or page[2] != serial or page[3] != seq or page[1] < 0 or page[0] & 0x01:
        return False
    flags, granule, _serial, _seq, _length, lacing = page
    if codec == "vorbis":
        # Exact only with the setup header's modes; a bound: each packet adds at most half a
        # long block.
        return granule <= sum(1 for lace in lacing if lace < 255) * max_packet
    body = pos + 27 + len(lacing)
    start, total = body, 0
    for lace in lacing:
        body += lace
        if lace < 255:
            total += _opus_samples(bytes(data[start:start + 2]))
            start = body
    # The last page may end short of its packets (the encoder's padding trimmed off).
    return granule <= total if flags & 0x04 else granule == total


def _last_pages(data: memoryview, serial: int, count: int = 4) -> tuple[int, int] | None:
    """(flags, granule) of the page that ends the file exactly, once it and the pages before
    it (up to `count`, about the last seconds the demuxer would read) check out."""
    end, found, seq = len(data), None, -1
    for _ in range(count):
        lo = max(0, end - OGG_MAX_PAGE)
        tail = bytes(data[lo:end])
        at = len(tail)
        page = None
        while page is None:
            at = tail.rfind(b"OggS", 0, at)
            if at < 0:
                return None
            page = _page(data, lo + at)
            if page is not None and lo + at + page[4] != end:
                page = None  # "OggS" inside a payload
        if page[2] != serial or (seq >= 0 and page[3] != seq - 1):
            return None
        if found is None:
            found = (page[0], page[1])
        end, seq = lo + at, page[3]
        if seq <= 2:
            break  # the header pages are checked already
    return found


def _bitrate(size: int, samples: int, rate: int) -> int:
    """Bits per second over the file as FFmpeg's demuxer reports it: the length rounded to
    the nearest microsecond, the rate rounded down."""
    micros = (samples * 1_000_000 + rate // 2) // rate
    return size * 8 * 1_000_000 // max(micros, 1)


# -- Vorbis comments ------------------------------------------------------------------------

def _comments(block: memoryview, framing: bool = False) -> list[tuple[str, str]]:
    """The (key, value) pairs of a Vorbis comment block, read by mutagen, as the tag reader
    of the demuxer's path reads them (what it refuses raises ValueError here)."""
    from mutagen._vorbis import VComment, error

    try:
        return list(VComment(bytes(block), framing=framing))
    except error as exc:
        raise ValueError(str(exc)) from None
