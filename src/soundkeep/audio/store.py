"""The content-addressed store: store/ab/cd/<sha256>, each file written once (temp name + rename).

A file is read once: WholeFileReader reads it into memory with one large read, and the demuxer,
the tag reader, sha256 and (when copying) the store's temporary file all use those bytes;
files too large for that go through HashingReader, which hands its reads to the demuxer and,
in the same pass, feeds them to sha256 and the temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
TMP_NAME = ".tmp"
STORE_MODES = ("copy", "link", "in_place")


def store_relpath(sha256: str) -> str:
    """Where a content lives, relative to the archive root: store/ab/cd/<sha256>."""
    return f"store/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def tmp_dir(store_dir: Path) -> Path:
    """The store's scratch directory (same file system, so a rename is atomic)."""
    return store_dir / TMP_NAME


def clean_tmp(store_dir: Path) -> int:
    """Remove temporary files a killed scan left behind; returns how many were removed."""
    removed = 0
    d = tmp_dir(store_dir)
    if d.is_dir():
        for p in d.iterdir():
            if p.is_file() and p.name.endswith(".part"):
                p.unlink(missing_ok=True)
                removed += 1
    return removed


def new_tmp_path(store_dir: Path) -> Path:
    """A fresh temporary name inside the store."""
    d = tmp_dir(store_dir)
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{os.getpid()}-{secrets.token_hex(8)}.part"


_BUF: memoryview | None = None


def _buffer() -> memoryview:
    global _BUF
    if _BUF is None:
        _BUF = memoryview(bytearray(CHUNK))
    return _BUF


class HashingReader:
    """A read-only file object for PyAV that hashes (and optionally copies) what it reads.

    Bytes are hashed in file order: when the demuxer seeks forward past what was hashed,
    the gap is read and hashed first; finish() hashes whatever the demuxer never asked for.
    So sha256 is exact whatever the access pattern, and each byte is read about once.
    """

    def __init__(self, path: str, tee: BinaryIO | None = None) -> None:
        self._path = path
        self._f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._fd = self._f.fileno()
        self.size = os.fstat(self._fd).st_size
        self._pos = 0
        self._hashed = 0
        self._hash = hashlib.sha256()
        self._tee = tee

    # -- the file-object protocol PyAV uses ---------------------------------------------
    def readable(self) -> bool:
        """PyAV asks before reading."""
        return True

    def seekable(self) -> bool:
        """PyAV asks before seeking."""
        return True

    def read(self, n: int = -1) -> bytes:
        """Read at the current position, hashing any bytes not hashed yet."""
        if n is None or n < 0:
            n = max(0, self.size - self._pos)
        if self._pos > self._hashed:
            self._hash_until(self._pos)
        data = os.pread(self._fd, n, self._pos)
        if data:  # past the end of the file nothing is read, nor hashed
            end = self._pos + len(data)
            if end > self._hashed:
                self._feed(memoryview(data)[self._hashed - self._pos:])
                self._hashed = end
            self._pos = end
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the read position (no I/O)."""
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        elif whence == 2:
            self._pos = self.size + offset
        else:
            raise OSError(f"unsupported whence {whence}")
        self._pos = max(0, self._pos)
        return self._pos

    def tell(self) -> int:
        """The read position."""
        return self._pos

    # -- hashing ------------------------------------------------------------------------
    def _feed(self, data: memoryview | bytes) -> None:
        self._hash.update(data)
        if self._tee is not None:
            self._tee.write(data)

    def _hash_until(self, target: int | None) -> None:
        # One reused buffer: a fresh 1 MiB bytes object per read costs page faults that are
        # a third of the hashing time.
        buf = _buffer()
        while target is None or self._hashed < target:
            want = CHUNK if target is None else min(CHUNK, target - self._hashed)
            n = os.preadv(self._fd, [buf[:want]], self._hashed)
            if n <= 0:
                break
            self._feed(buf[:n])
            self._hashed += n

    def pread(self, n: int, offset: int) -> bytes:
        """Read bytes for a structural check without touching the hash state."""
        return os.pread(self._fd, n, offset)

    def view(self) -> str:
        """What a second reader (the tag reader) opens: the path."""
        return self._path

    def finish(self) -> tuple[str, int]:
        """Hash the rest of the file; returns (sha256 hex, bytes hashed)."""
        self._hash_until(None)
        return self._hash.hexdigest(), self._hashed

    def close(self) -> None:
        """Close the underlying file."""
        self._f.close()


# Files up to this size are read whole into memory at once (one large read, one hash update,
# one write of the copy); bigger ones are streamed through HashingReader.
MAX_IN_MEMORY = 64 << 20
_WHOLE: bytearray | None = None


def _whole_buffer(size: int) -> bytearray:
    """A per-process buffer of at least size bytes, reused across files.

    A fresh buffer per file costs page faults comparable to hashing it. The buffer is replaced,
    never resized, so views into an old one stay valid.
    """
    global _WHOLE
    if _WHOLE is None or len(_WHOLE) < size:
        _WHOLE = bytearray(max(size, CHUNK) + CHUNK)
    return _WHOLE


class MemoryFile:
    """A read-only file object over bytes in memory (what PyAV and mutagen read from)."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._pos = 0
        self.size = len(data)

    def readable(self) -> bool:
        """PyAV and mutagen ask before reading."""
        return True

    def seekable(self) -> bool:
        """PyAV and mutagen ask before seeking."""
        return True

    def read(self, n: int = -1) -> bytes:
        """Read from the current position."""
        start = self._pos
        end = self.size if n is None or n < 0 else min(self.size, start + n)
        if end <= start:
            return b""
        self._pos = end
        return bytes(self._data[start:end])

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the read position."""
        if whence == 0:
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        elif whence == 2:
            pos = self.size + offset
        else:
            raise OSError(f"unsupported whence {whence}")
        self._pos = max(0, pos)
        return self._pos

    def tell(self) -> int:
        """The read position."""
        return self._pos


class WholeFileReader(MemoryFile):
    """A file read whole into memory with one large read; the same interface as HashingReader.

    The demuxer reads from memory; other readers (tags, structural checks) get their own
    view of the same bytes; finish() hashes them in one update and writes the copy in one go.
    """

    def __init__(self, path: str, tee: BinaryIO | None = None) -> None:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            # One byte more than the size: a file that grew since the stat is noticed.
            buf = memoryview(_whole_buffer(size + 1))[:size + 1]
            n = 0
            while n < len(buf):
                got = f.readinto(buf[n:])
                if not got:
                    break
                n += got
        super().__init__(buf[:n])
        self._tee = tee

    @property
    def data(self) -> memoryview:
        """The file's bytes."""
        return self._data

    def view(self) -> MemoryFile:
        """Another reader of the same bytes, with its own position."""
        return MemoryFile(self._data)

    def pread(self, n: int, offset: int) -> bytes:
        """Bytes for a structural check (the read position does not move)."""
        return bytes(self._data[offset:offset + n])

    def finish(self) -> tuple[str, int]:
        """Hash the bytes (and write the copy); returns (sha256 hex, bytes hashed)."""
        if self._tee is not None:
            self._tee.write(self._data)
        return hashlib.sha256(self._data).hexdigest(), self.size

    def close(self) -> None:
        """Nothing to close (the file was closed after reading)."""


Reader = HashingReader | WholeFileReader


def start_writeback(fd: int) -> None:
    """Start writing a file's dirty pages to disk without waiting (Linux), so that a later
    fsync finds little left to do."""
    sync_range = getattr(os, "sync_file_range", None)
    flag = getattr(os, "SYNC_FILE_RANGE_WRITE", None)
    if sync_range is not None and flag is not None:
        with contextlib.suppress(OSError):
            sync_range(fd, 0, 0, flag)


def commit_tmp(tmp: Path, root: Path, sha256: str, read_only: bool = True) -> bool:
    """Move a finished temporary file to its content address; False if it was already there."""
    final = root / store_relpath(sha256)
    if final.exists():
        tmp.unlink(missing_ok=True)
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    if read_only:
        os.chmod(tmp, 0o444)
    os.replace(tmp, final)
    return True


def link_into_store(src: str, root: Path, sha256: str) -> bool:
    """Hard-link an original into the store (never changing the original); False if present."""
    final = root / store_relpath(sha256)
    if final.exists():
        return False
    tmp = new_tmp_path(root / "store")
    os.link(src, tmp)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    return True
