"""Reading the files a show names: regular files only, inside the show's folder, bounded in size.

A show file, an included file or an image asset is read only when

- it resolves (symlinks followed) to a place inside one of the allowed folders: the show's own
  folder and its subfolders, plus any folder the user allows (``--allow-path DIR``);
- it is a regular file: a FIFO would block the reader forever and a device such as /dev/zero
  never ends, so the check is made on the opened descriptor (no race with a swap of the path);
- it has at most `limit` bytes, counted while reading (a file that grows, or lies about its
  size as /proc files do, is still cut off).

Every refusal is a `FileProblem` with a one-line message; the loader places it at the include
or asset that named the file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_FILE_BYTES", "FileProblem", "ReadPolicy", "read_bytes"]

# A byte limit no real show reaches (an imported 100,000-scene timeline is about 17 MB); bombs
# inside a file are stopped by counting values and nesting, not by this.
MAX_FILE_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


class FileProblem(Exception):
    """A file that cannot be used; `message` is the one line shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ReadPolicy:
    """Where reads may go (resolved folders; empty: anywhere) and how much they may take."""

    roots: tuple[Path, ...] = ()
    limit: int = MAX_FILE_BYTES

    @classmethod
    def for_show(cls, show_file: Path, allowed: Iterable[Path] = (), *,
                 limit: int = MAX_FILE_BYTES) -> ReadPolicy:
        """The show's folder and the `allowed` folders."""
        roots = [show_file.resolve().parent, *(Path(p).resolve() for p in allowed)]
        return cls(tuple(dict.fromkeys(roots)), limit)

    def check(self, path: Path) -> Path:
        """The resolved `path`; raises FileProblem when it lies outside every allowed folder."""
        try:
            target = path.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise FileProblem(f"cannot resolve the path: {exc}") from None
        if self.roots and not any(target.is_relative_to(root) for root in self.roots):
            where = self.roots[0]
            raise FileProblem(
                f"{path} is outside the show's folder {where} "
                f"(allow another folder with --allow-path DIR)"
            )
        return target


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(path: Path, policy: ReadPolicy = ReadPolicy()) -> bytes:
    """The whole content of the regular file `path`, under `policy`; raises FileProblem."""
    target = policy.check(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileProblem("file not found") from None
    except IsADirectoryError:
        raise FileProblem("is a directory, not a file") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket or a FIFO without a writer on some systems
            raise FileProblem("is not a regular file") from None
        raise FileProblem(f"cannot read file: {(exc.strerror or str(exc)).lower()}") from None
    except ValueError:  # a NUL character in the name
        raise FileProblem("not a valid file name") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _kind(mode)
            what = "is a directory, not a file" if kind == "a directory" else f"is {kind}, not a regular file"
            raise FileProblem(what)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > policy.limit:
                raise FileProblem(
                    f"file is too large (more than {policy.limit // (1024 * 1024)} MiB)"
                )
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise FileProblem(f"cannot read file: {(exc.strerror or str(exc)).lower()}") from None
    finally:
        os.close(fd)
