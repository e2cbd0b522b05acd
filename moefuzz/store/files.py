"""Corpus file primitives: fsync'ed writes, atomic replacement, the writers' lock, and refusals
of symlinks. :mod:`moefuzz.store.corpus` builds crash-safe findings from these; nothing here knows
what a finding is.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from moefuzz.errors import CorpusError, StorageError

#: The lock file of a target directory; never a finding.
LOCK_FILE = ".moefuzz.lock"
#: Seconds a writer waits for another one's lock before giving up (StorageError).
LOCK_TIMEOUT_S = 300.0


def refuse_symlink(path: Path, what: str) -> None:
    if path.is_symlink():
        raise CorpusError(f"{what} path={str(path)!r} is a symlink; moefuzz never reads or writes through one")


def make_dirs(directory: Path) -> None:
    """Create ``directory`` and its parents, fsync'ing the parent of the last; refuse a
    symlinked ``directory`` (the corpus root above it may be one)."""
    refuse_symlink(directory, "corpus directory")
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        fsync_dir(directory.parent)


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold ``directory/.moefuzz.lock``."""
    lock = filelock.FileLock(directory / LOCK_FILE, timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise StorageError(
            f"corpus path={str(directory)!r} stayed locked by another moefuzz for {LOCK_TIMEOUT_S:g} s ({LOCK_FILE})"
        ) from None
    try:
        yield
    finally:
        lock.release()


def is_plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def remove(path: Path) -> None:
    """Remove a leftover file or directory, never what a symlink points to."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def write_fd(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` and fsync it (the one place corpus bytes reach the disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def write_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist; a symlink there is not followed) with ``data``, fsync'ed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        write_fd(fd, data)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half:
    a temporary ``.<name>.<random>.tmp`` in the same directory, fsync'ed, then renamed over
    ``path`` (a symlink at ``path`` is replaced, not followed), then the directory fsync'ed.

    Raises:
        OSError: the write failed (the temporary file is removed).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_file(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
