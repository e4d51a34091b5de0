"""Restore patches: get back the exact bytes a file had before metadata was embedded in it.

A patch is the original file compressed by zstd with the tagged file as its dictionary
(zstd's "patch from" idea): the audio bytes match and cost almost nothing, so a patch holds
about the old tag block and, for Ogg, the page headers that tagging renumbered (a few KB).
Mirrors that have the tagged file and the patch can rebuild the original and check its hash.

Layout: MAGIC, sha256(original), sha256(tagged), original size (8 bytes, big-endian),
then one zstd frame.
"""

from __future__ import annotations

import hashlib

import zstandard as zstd

from soundkeep.errors import InputError

MAGIC = b"SKRPATCH1\n"
_HEADER = len(MAGIC) + 32 + 32 + 8
_LEVEL = 9  # from level 9 on, zstd finds the long matches against a multi-MB dictionary


def _window_log(total: int) -> int:
    return min(31, max(20, total.bit_length()))


def make_patch(original: bytes, tagged: bytes) -> bytes:
    """A patch that turns `tagged` back into `original`."""
    dictionary = zstd.ZstdCompressionDict(tagged, dict_type=zstd.DICT_TYPE_RAWCONTENT)
    params = zstd.ZstdCompressionParameters.from_level(
        _LEVEL, window_log=_window_log(len(original) + len(tagged)), enable_ldm=True)
    body = zstd.ZstdCompressor(dict_data=dictionary, compression_params=params).compress(original)
    return (MAGIC + hashlib.sha256(original).digest() + hashlib.sha256(tagged).digest()
            + len(original).to_bytes(8, "big") + body)


def apply_patch(tagged: bytes, patch: bytes, where: str = "patch") -> bytes:
    """Rebuild the original bytes from the tagged file and its patch; checks both hashes."""
    if len(patch) < _HEADER or not patch.startswith(MAGIC):
        raise InputError("not a soundkeep restore patch", file=where,
                         expected=f"a file starting with {MAGIC!r}")
    pos = len(MAGIC)
    want_original = patch[pos:pos + 32]
    want_tagged = patch[pos + 32:pos + 64]
    size = int.from_bytes(patch[pos + 64:pos + 72], "big")
    if hashlib.sha256(tagged).digest() != want_tagged:
        raise InputError("the patch belongs to another file", file=where,
                         value=hashlib.sha256(tagged).hexdigest(),
                         expected=f"the file with sha256 {want_tagged.hex()}")
    dictionary = zstd.ZstdCompressionDict(tagged, dict_type=zstd.DICT_TYPE_RAWCONTENT)
    try:
        original = zstd.ZstdDecompressor(
            dict_data=dictionary, max_window_size=1 << _window_log(size + len(tagged)),
        ).decompress(patch[_HEADER:], max_output_size=size)
    except zstd.ZstdError as exc:
        raise InputError(f"the patch is damaged: {exc}", file=where) from None
    if hashlib.sha256(original).digest() != want_original:
        raise InputError("the rebuilt file does not match its recorded hash", file=where,
                         expected=f"sha256 {want_original.hex()}")
    return original


def patch_target(patch: bytes) -> str:
    """The sha256 (hex) of the original a patch rebuilds."""
    return patch[len(MAGIC):len(MAGIC) + 32].hex()
