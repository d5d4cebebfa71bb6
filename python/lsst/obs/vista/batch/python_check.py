"""Whether this Python can read quantum graphs safely in bps jobs.

The quantum-graph files that bps jobs read (``.qg``) are zip archives of
uncompressed members, read with two members open at once.  CPython 3.12.0
to 3.12.8 and 3.13.0 to 3.13.1 seek such a member relative to wherever the
other member left the shared file (CPython gh-127847, fixed in 3.12.9 and
3.13.2), so the jobs and the final job of larger submissions read the wrong
bytes and stop with an ``EOFError``.

Run as a script (``python python_check.py``, standard library only), it
exits 1 on a Python with the bug: ``bin/find_python.sh`` prefers one without.
"""

from __future__ import annotations

__all__ = ("ZIPFILE_SEEK_BUG", "has_zipfile_seek_bug")

import io
import sys
import zipfile

ZIPFILE_SEEK_BUG = "CPython gh-127847 (fixed in Python 3.12.9 and 3.13.2)"
"""The bug `has_zipfile_seek_bug` looks for, as messages name it."""


def has_zipfile_seek_bug() -> bool:
    """Return whether this interpreter's `zipfile` has CPython gh-127847.

    The check is the bug's behaviour, not the version number, so that a
    distribution's patched Python passes: a seek in one uncompressed member
    after a read of another must land inside the first.

    Returns
    -------
    has_bug : `bool`
        `True` if the seek lands elsewhere.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, mode="w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("first", b"0123")
        archive.writestr("second", b"abcd")
    with zipfile.ZipFile(buffer) as archive:
        with archive.open("first") as first, archive.open("second") as second:
            first.read(1)
            second.seek(2)
            return second.read(1) != b"c"


if __name__ == "__main__":
    sys.exit(1 if has_zipfile_seek_bug() else 0)
