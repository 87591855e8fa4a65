"""Reading the files a show names: regular files only, inside the show's folder, bounded in size.

A show file, an included file or an image asset is read only when

- it resolves (symlinks followed) to a place inside one of the allowed folders: the show's own
  folder and its subfolders, plus any folder the user allows (``--allow-path DIR``);
- it is a regular file: a FIFO would block the reader forever and a device such as /dev/zero
  never ends, so the check is made on the opened descriptor (no race with a swap of the path);
- it has at most `limit` bytes, counted while reading (a file that grows, or lies about its
  size as /proc files do, is still cut off).

Image assets are not read here but uploaded at run time: `check_file` makes the same checks
(folders, regular file) on them without opening them.

Every refusal is a `FileProblem` with a one-line message and a `kind`; the loader words it and
places it at the include or asset that named the file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MAX_FILE_BYTES",
    "FileOutside",
    "FileProblem",
    "FileTooLarge",
    "ReadPolicy",
    "check_file",
    "read_bytes",
]

# A byte limit no real show reaches (an imported 100,000-scene timeline is about 17 MB); bombs
# inside a file are stopped by counting values and nesting, not by this.
MAX_FILE_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


class FileProblem(Exception):
    """A file that cannot be used; `message` is the one line shown to the user.

    `kind` says what is wrong, so that a caller can word it in its own terms: "missing",
    "directory", "special" (a FIFO, device or socket), "outside", "too-large", "name" (not a valid
    file name) or "unreadable".
    """

    def __init__(self, message: str, kind: str = "unreadable") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class FileOutside(FileProblem):
    """The path resolves to a place outside every allowed folder."""

    def __init__(self, path: Path, target: Path, roots: tuple[Path, ...]) -> None:
        super().__init__(
            f"{path} is outside the show's folder {roots[0]} "
            f"(allow another folder with --allow-path DIR)",
            "outside",
        )
        self.target = target
        self.roots = roots


class FileTooLarge(FileProblem):
    """More than the limit: `size` is the file's size, or what was read before giving up."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"file is too large (more than {limit // (1024 * 1024)} MiB)", "too-large")
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class ReadPolicy:
    """Where reads may go (resolved folders; empty: anywhere) and how much they may take."""

    roots: tuple[Path, ...] = ()
    limit: int = MAX_FILE_BYTES

    @classmethod
    def for_show(cls, show_file: Path, allowed: Iterable[Path | str] = (), *,
                 limit: int = MAX_FILE_BYTES) -> ReadPolicy:
        """The show's folder and the `allowed` folders.

        The show's folder is the one the show file is named in (its relative paths start
        there), even when the show file itself is a symlink to a file elsewhere.
        """
        return cls.for_folder(Path(show_file).absolute().parent, allowed, limit=limit)

    @classmethod
    def for_folder(cls, folder: Path, allowed: Iterable[Path | str] = (), *,
                   limit: int = MAX_FILE_BYTES) -> ReadPolicy:
        """`folder` (a show given as text, with its base folder) and the `allowed` folders."""
        roots = [Path(folder).resolve(), *(Path(p).resolve() for p in allowed)]
        return cls(tuple(dict.fromkeys(roots)), limit)

    def check(self, path: Path) -> Path:
        """The resolved `path`; raises FileOutside when it lies outside every allowed folder."""
        try:
            target = Path(path).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise FileProblem(f"cannot resolve the path: {exc}", "name") from None
        except ValueError:  # a NUL character in the name
            raise FileProblem("not a valid file name", "name") from None
        if self.roots and not any(target.is_relative_to(root) for root in self.roots):
            raise FileOutside(Path(path), target, self.roots)
        return target


def file_kind(mode: int) -> str:
    """What a file of this `st_mode` is, for a message ("a FIFO", "a device", ...)."""
    if stat.S_ISLNK(mode):  # from lstat
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _not_regular(mode: int) -> FileProblem:
    kind = file_kind(mode)
    if kind == "a directory":
        return FileProblem("is a directory, not a file", "directory")
    return FileProblem(f"is {kind}, not a regular file", "special")


def _os_problem(exc: OSError) -> FileProblem:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return FileProblem("file not found", "missing")
    if isinstance(exc, IsADirectoryError):
        return FileProblem("is a directory, not a file", "directory")
    if exc.errno == errno.ENXIO:  # a socket, or a FIFO without a writer on some systems
        return FileProblem("is not a regular file", "special")
    if exc.errno == errno.ENAMETOOLONG:
        return FileProblem("not a valid file name", "name")
    return FileProblem(f"cannot read file: {(exc.strerror or str(exc)).lower()}")


def check_file(path: Path, policy: ReadPolicy = ReadPolicy()) -> Path:
    """The resolved `path` when it is a regular file under `policy` (not opened, not read).

    For files that are handed on rather than read here, such as image assets uploaded at run
    time. Raises FileProblem like `read_bytes`; a file outside the allowed folders is refused
    before anything about it (even whether it exists) is looked at.
    """
    target = policy.check(path)
    try:
        mode = os.stat(target).st_mode
    except OSError as exc:
        raise _os_problem(exc) from None
    except ValueError:
        raise FileProblem("not a valid file name", "name") from None
    if not stat.S_ISREG(mode):
        raise _not_regular(mode)
    return target


def read_bytes(path: Path, policy: ReadPolicy = ReadPolicy()) -> bytes:
    """The whole content of the regular file `path`, under `policy`; raises FileProblem."""
    target = policy.check(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_problem(exc) from None
    except ValueError:  # a NUL character in the name
        raise FileProblem("not a valid file name", "name") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(info.st_mode)
        if info.st_size > policy.limit:  # known too large: say how large, read nothing
            raise FileTooLarge(info.st_size, policy.limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, policy.limit + 1 - size))
            if not chunk:
                break
            size += len(chunk)
            if size > policy.limit:  # it grew, or its size was not true
                raise FileTooLarge(size, policy.limit)
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise _os_problem(exc) from None
    finally:
        os.close(fd)
