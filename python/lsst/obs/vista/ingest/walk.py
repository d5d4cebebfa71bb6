"""Finding the regular files under the paths a user gives, without opening
anything else.

Every ingest entry point lists its inputs with `find_files`, so that they all
treat odd directory entries alike:

- only regular files are returned; FIFOs, sockets and devices are named and
  passed over without being opened (opening a FIFO waits for a writer, for
  ever if there is none);
- a symbolic link is followed to what it points to: a regular file is
  returned under the link's name, a directory is walked;
- every directory is walked once, however many links lead to it, and a link
  that leads back to a directory being walked (a loop) is named and not
  followed;
- a link that leads nowhere and a directory that cannot be read are named;
- a file reached under several names (links, two of the given paths) is
  returned once, under the first name in walk order.

Nothing is logged here: the caller reports the entries passed over.
"""

from __future__ import annotations

__all__ = ("FoundFile", "FoundFiles", "SkippedPath", "find_files")

import dataclasses
import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

_NOT_REGULAR = (
    (stat.S_ISFIFO, "FIFO", "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket", "a socket"),
    (stat.S_ISCHR, "character device", "a character device"),
    (stat.S_ISBLK, "block device", "a block device"),
)
"""Kinds of entries that are neither regular files nor directories: test of
the mode, the kind as summaries count it, and how a message names it."""


@dataclasses.dataclass(frozen=True)
class FoundFile:
    """A regular file found under the given paths."""

    path: Path
    """Absolute path, under the name it was found by (links not resolved)."""

    root: Path
    """The given path it was found under (itself if given explicitly)."""

    @property
    def explicit(self) -> bool:
        """Whether the file was given itself rather than found in a
        directory."""
        return self.path == self.root


@dataclasses.dataclass(frozen=True)
class SkippedPath:
    """A directory entry passed over."""

    kind: str
    """What it is, as summaries count it: ``FIFO``, ``socket``,
    ``character device``, ``block device``, ``symlink loop``, ``broken
    symlink``, ``unreadable directory`` or ``unreadable path``."""

    message: str
    """Why it was passed over, one line (without the path)."""


@dataclasses.dataclass
class FoundFiles:
    """The regular files under the given paths, and what was passed over."""

    given: list[Path] = dataclasses.field(default_factory=list)
    """The given paths, absolute, in order."""

    files: list[FoundFile] = dataclasses.field(default_factory=list)
    """Regular files, each once, in walk order (given order, then sorted by
    name inside each directory)."""

    skipped: dict[Path, SkippedPath] = dataclasses.field(default_factory=dict)
    """Entries found in directories that are not regular files or
    directories, or cannot be followed or read."""

    rejected: dict[Path, str] = dataclasses.field(default_factory=dict)
    """Given paths that are neither a regular file nor a directory, with
    the cause (one line)."""


def find_files(paths: Iterable[str | os.PathLike[str]]) -> FoundFiles:
    """List the regular files among files and directory trees.

    Parameters
    ----------
    paths : iterable [`str` or `os.PathLike`]
        Files and directories (searched recursively, following symbolic
        links).

    Returns
    -------
    found : `FoundFiles`
        The regular files, and the paths passed over or rejected.  Only
        ``stat`` and directory listings are used: no file is opened.
    """
    walker = _Walker()
    for given in paths:
        root = Path(os.path.abspath(given))
        walker.found.given.append(root)
        entry = _stat(root)
        if isinstance(entry, SkippedPath):
            walker.found.rejected[root] = entry.message
        elif entry is None:
            walker.found.rejected[root] = "no such file or directory"
        elif stat.S_ISDIR(entry.st_mode):
            walker.walk(root, root, entry, ancestors={})
        elif stat.S_ISREG(entry.st_mode):
            walker.add_file(root, root, entry)
        else:
            _, what = _not_regular(entry.st_mode)
            walker.found.rejected[root] = f"{what}, not a regular file or directory; not opened"
    for path in walker.found.rejected:
        # Given itself and also found in a given directory: named once.
        walker.found.skipped.pop(path, None)
    return walker.found


class _Walker:
    """The state of one `find_files`: what was found, and the files and
    directories seen (by device and inode)."""

    def __init__(self) -> None:
        self.found = FoundFiles()
        self.seen_files: set[tuple[int, int]] = set()
        self.seen_directories: set[tuple[int, int]] = set()

    def add_file(self, path: Path, root: Path, entry: os.stat_result) -> None:
        key = (entry.st_dev, entry.st_ino)
        if key not in self.seen_files:
            self.seen_files.add(key)
            self.found.files.append(FoundFile(path, root))

    def walk(
        self, directory: Path, root: Path, entry: os.stat_result, ancestors: dict[tuple[int, int], Path]
    ) -> None:
        """Walk a directory (``entry`` is its ``stat``), given the
        directories above it on the way from ``root`` (by device and
        inode)."""
        key = (entry.st_dev, entry.st_ino)
        if key in ancestors:
            self.found.skipped[directory] = SkippedPath(
                "symlink loop", f"symlink loop: leads back to {ancestors[key]}; not followed again"
            )
            return
        if key in self.seen_directories:
            # Reached again through another link: walked already.
            return
        self.seen_directories.add(key)
        try:
            names = sorted(os.listdir(directory))
        except OSError as err:
            self.found.skipped[directory] = SkippedPath(
                "unreadable directory", f"cannot list this directory ({err.strerror})"
            )
            return
        below = {**ancestors, key: directory}
        for name in names:
            path = directory / name
            target = _stat(path)
            if isinstance(target, SkippedPath):
                self.found.skipped[path] = target
            elif target is None:
                # Removed since it was listed.
                continue
            elif stat.S_ISDIR(target.st_mode):
                self.walk(path, root, target, below)
            elif stat.S_ISREG(target.st_mode):
                self.add_file(path, root, target)
            else:
                kind, what = _not_regular(target.st_mode)
                if path.is_symlink():
                    what = f"a symbolic link to {what} ({os.readlink(path)})"
                self.found.skipped[path] = SkippedPath(kind, f"{what}, not a regular file; skipped unopened")


def _stat(path: Path) -> os.stat_result | SkippedPath | None:
    """Return what a path leads to (links followed), a `SkippedPath` for a
    link that leads nowhere, or `None` if there is nothing there."""
    try:
        return os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return SkippedPath("symlink loop", "symlink loop: the link never reaches a file or directory")
        if not os.path.lexists(path):
            return None
        if os.path.islink(path):
            return SkippedPath("broken symlink", f"broken symlink to {os.readlink(path)}")
        return SkippedPath("unreadable path", f"cannot be examined ({err.strerror})")


def _not_regular(mode: int) -> tuple[str, str]:
    """Return the kind of a mode that is neither a regular file nor a
    directory, and how a message names it."""
    for test, kind, what in _NOT_REGULAR:
        if test(mode):
            return kind, what
    return "special file", "a special file"
