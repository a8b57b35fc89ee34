"""Crash-safe file writes: temp file in the same directory, fsync, rename, fsync the directory.

A reader sees either the old content or the new, never a torn file, even if the process is killed
mid-write. Used for the checkpoint, CDI specs and the fake backend's state.

Since every write is a new file renamed into place, a reader that kept what it read can tell
whether the file was written since by its `identity` (the inode changes with every write), and
skip reading and decoding it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import tempfile
import threading
import weakref
from collections.abc import Iterator
from types import TracebackType


def write_bytes(
    path: pathlib.Path, data: bytes, *, mode: int = 0o644, durable: bool = True
) -> None:
    """Replace `path` with `data` atomically and (unless `durable` is False) durably.

    Not durable (no fsync) is for files that nothing needs after a power loss: the CDI spec and
    the quota files of a claim live only as long as this boot's checkpoint, which a reboot
    discards (its boot ID is another), and start-up reconciliation removes them. A process crash
    loses nothing either way: the kernel has the renamed file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), mode)
            if durable:
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


Identity = tuple[int, int, int, int, int]
"""Device, inode, size, modification and change time (ns) of a file."""


def identity(path: pathlib.Path | int) -> Identity | None:
    """The identity of the file at `path` (or open as descriptor `path`); None if there is none.

    Two reads of a file written only by `write_bytes` see the same content if its identity is the
    same: each write creates a new inode (an old inode number can be reused only after the file
    that had it is gone, and then with a new change time).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def remove(path: pathlib.Path, *, durable: bool = True) -> bool:
    """Remove `path` (durably unless `durable` is False); False if it was already gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    if durable:
        _fsync_dir(path.parent)
    return True


@contextlib.contextmanager
def locked(lock_path: pathlib.Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `lock_path` (created if missing) for the block."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


class NodeLock:
    """An exclusive ``flock`` on `path`, shared by every process of the node, with a stamp.

    Unlike `locked`, the file stays open for the life of the object, so that taking the lock costs
    no ``open`` (a file system call that takes 0.2 ms on some nodes' disks, several times per
    prepare). ``flock`` does not exclude threads that share one open file description, so the
    threads of this process take turns through a `threading.Lock` first.

    The stamp is the first bytes of the lock file, which the holder may read and replace: the
    checkpoint's writers leave there who wrote last and how often, so that another process learns
    with one ``pread`` whether the checkpoint changed since it last looked.
    """

    STAMP_SIZE = 64

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._closed = weakref.finalize(self, os.close, self._fd)
        self._threads = threading.Lock()

    def __enter__(self) -> NodeLock:
        self._threads.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def read_stamp(self) -> bytes:
        """The stamp as the last holder left it (empty if none ever wrote one); hold the lock."""
        return os.pread(self._fd, self.STAMP_SIZE, 0).rstrip(b"\0 \n")

    def write_stamp(self, stamp: bytes) -> None:
        """Replace the stamp (at most `STAMP_SIZE` bytes); hold the lock."""
        if len(stamp) > self.STAMP_SIZE:
            raise ValueError(f"a stamp has at most {self.STAMP_SIZE} bytes: {stamp!r}")
        os.pwrite(self._fd, stamp.ljust(self.STAMP_SIZE, b" "), 0)

    def close(self) -> None:
        """Close the file (also done when the object is collected)."""
        self._closed()


def _fsync_dir(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
