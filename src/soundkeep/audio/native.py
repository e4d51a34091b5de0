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

import struct
from dataclasses import dataclass

from fastcrc import crc8, crc16, crc32

# Frame block sizes by the 4-bit code of a FLAC frame header (0: reserved; 6, 7: in the header).
_BLOCK_SIZES = (0, 192, 576, 1152, 2304, 4608, -8, -16, 256, 512, 1024, 2048, 4096, 8192,
                16384, 32768)
# How far before the end the last FLAC frame may start when STREAMINFO gives no maximum.
_MAX_FRAME = 1 << 20
_OGG_HEADER = struct.Struct("<4sBBqIIIB")
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
            return _flac(data)
        if head == b"OggS":
            return _ogg(data, whole_check)
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        return None
    return None


# -- FLAC ---------------------------------------------------------------------------------------

def _flac(data: memoryview) -> Facts | None:
    size = len(data)
    pos = 4
    info: bytes | None = None
    comments: list[tuple[str, str]] = []
    last = False
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
        elif kind == 4:
            comments = _comments(data[body:body + length])
        elif kind == 127 or (info is None and pos != 4):
            return None  # invalid block type, or STREAMINFO not first
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
    end = _last_frame_end(data, pos, size, max_frame, min_block, max_block)
    if end != total:
        return None
    seconds = total / rate
    return Facts("flac", "flac", rate, channels, seconds, _bitrate(size, total, rate), comments)


def _frame_header(data: memoryview, pos: int) -> tuple[int, int, bool] | None:
    """(coded number, block size, variable blocking) of a valid frame header at pos, or None."""
    if len(data) < pos + 6 or data[pos] != 0xFF or data[pos + 1] & 0xFE != 0xF8:
        return None
    variable = bool(data[pos + 1] & 1)
    bs_code, sr_code = data[pos + 2] >> 4, data[pos + 2] & 0xF
    if bs_code == 0 or sr_code == 15 or data[pos + 3] >> 4 >= 11 or data[pos + 3] & 1:
        return None
    # The frame (or sample) number, coded like UTF-8 in 1 to 7 bytes.
    b0 = data[pos + 4]
    extra = 0
    while extra < 7 and b0 & (0x80 >> extra):
        extra += 1
    if extra == 1 or extra == 7:
        return None
    number = b0 & (0x7F >> extra) if extra else b0
    p = pos + 5
    for _ in range(max(extra - 1, 0)):
        b = data[p]
        if b & 0xC0 != 0x80:
            return None
        number = (number << 6) | (b & 0x3F)
        p += 1
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


def _last_frame_end(data: memoryview, start: int, size: int, max_frame: int, min_block: int,
                    max_block: int) -> int | None:
    """The sample where the last frame ends: the last header from which the frames to the end
    check out (a sync pattern inside audio data fails its CRCs)."""
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
                return number + block
            if min_block != max_block and lo + at != start:
                return None  # a fixed block size that is not fixed: let the demuxer judge
            return number * max_block + block
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
        channels = ident[11]
        rate, _bmax, nominal = struct.unpack_from("<Iii", ident, 12)
        pre_skip = 0
        bitrate: int | None = nominal if nominal > 0 else None
        comment_magic = b"\x03vorbis"
    elif ident.startswith(b"OpusHead") and len(ident) >= 19:
        codec = "opus"
        channels = ident[9]
        pre_skip = struct.unpack_from("<H", ident, 10)[0]
        rate, bitrate, comment_magic = _OPUS_RATE, None, b"OpusTags"
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
        done = False
        for lace in p_lacing:
            packet += data[body:body + lace]
            body += lace
            if lace < 255:
                done = True
                break
        pos += p_len
        seq_next += 1
        if done:
            break
    if not packet.startswith(comment_magic):
        return None
    comments = _comments(memoryview(packet)[len(comment_magic):])
    last_flags, last_granule = 0, 0  # no audio page: not proven
    if whole_check:
        while pos < size:  # every page: whole, its CRC right, none missing, one stream
            page = _page(data, pos)
            if page is not None and page[2] != serial:
                return None  # several streams (chained or multiplexed): the demuxer's job
            if page is None and _runs_past_end(data, pos):
                return None  # cut short: the demuxer says so
            if page is None or page[3] != seq_next:
                # The demuxer would resynchronise and play on over the hole.
                raise Damaged(f"corrupt audio data: Ogg page {seq_next} (at byte {pos}) is "
                              "damaged or missing")
            last_flags, last_granule = page[0], page[1]
            pos += page[4]
            seq_next += 1
        if pos != size or seq_next < 3:
            return None
    else:
        found = _last_page(data, serial)
        if found is None:
            return None
        last_flags, last_granule = found
    if not last_flags & 0x04 or last_granule <= pre_skip:
        return None
    seconds = (last_granule - pre_skip) / rate
    if bitrate is None:  # over the length with the pre-skip, as the demuxer counts it
        bitrate = _bitrate(size, last_granule, rate)
    return Facts("ogg", codec, rate, channels, seconds, bitrate, comments)


def _last_page(data: memoryview, serial: int) -> tuple[int, int] | None:
    """(flags, granule) of the page that ends the file exactly, checked."""
    size = len(data)
    lo = max(0, size - (27 + 255 + 255 * 255))
    tail = bytes(data[lo:])
    at = len(tail)
    while True:
        at = tail.rfind(b"OggS", 0, at)
        if at < 0:
            return None
        page = _page(data, lo + at)
        if page is not None and lo + at + page[4] == size:
            return (page[0], page[1]) if page[2] == serial else None


def _bitrate(size: int, samples: int, rate: int) -> int:
    """Bits per second over the file as FFmpeg's demuxer reports it: the length rounded to
    the nearest microsecond, the rate rounded down."""
    micros = (samples * 1_000_000 + rate // 2) // rate
    return size * 8 * 1_000_000 // max(micros, 1)


# -- Vorbis comments ------------------------------------------------------------------------

def _comments(block: memoryview) -> list[tuple[str, str]]:
    """The (key, value) pairs of a Vorbis comment block (vendor string first, then comments)."""
    (vendor_len,) = struct.unpack_from("<I", block, 0)
    pos = 4 + vendor_len
    (count,) = struct.unpack_from("<I", block, pos)
    pos += 4
    out: list[tuple[str, str]] = []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", block, pos)
        pos += 4
        if pos + n > len(block):
            raise ValueError("comment runs past its block")
        text = bytes(block[pos:pos + n]).decode("utf-8")
        pos += n
        key, sep, value = text.partition("=")
        if sep:
            out.append((key, value))
    return out
