"""The content-addressed store: store/ab/cd/<sha256>, each file written once (temp name + rename).

A file is read once: HashingReader hands its bytes to the demuxer and, in the same pass,
feeds them to sha256 and (when copying) to the store's temporary file.
"""

from __future__ import annotations

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

    def finish(self) -> tuple[str, int]:
        """Hash the rest of the file; returns (sha256 hex, bytes hashed)."""
        self._hash_until(None)
        return self._hash.hexdigest(), self._hashed

    def close(self) -> None:
        """Close the underlying file."""
        self._f.close()


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
