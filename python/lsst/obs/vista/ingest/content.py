"""Whether a file offered for ingest holds what the repository already has
for its data IDs."""

from __future__ import annotations

__all__ = ("CHECKSUM_ALGORITHM", "checksum", "content_difference")

import hashlib
from pathlib import Path

from lsst.resources import ResourcePath

CHECKSUM_ALGORITHM = "blake2b"
"""`hashlib` algorithm of the content checksums."""

_BLOCK = 1 << 20
"""Bytes read at a time."""


def checksum(uri: ResourcePath) -> str:
    """Return the hexadecimal checksum of a file's bytes.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        The file, local or remote.

    Returns
    -------
    digest : `str`
        `CHECKSUM_ALGORITHM` digest of the whole file.
    """
    digest = hashlib.new(CHECKSUM_ALGORITHM)
    with uri.open("rb") as stream:
        while block := stream.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def content_difference(path: Path, stored: ResourcePath) -> str | None:
    """Compare a file with the datastore's file of the same datasets.

    FITS files come in 2880-byte blocks, so a reprocessed file often has
    exactly the size of the one it replaces: files of equal size are told
    apart by checksum.  A stored file that is the given file itself (ingested
    in place, or as a link) is the same content without reading it.

    Parameters
    ----------
    path : `pathlib.Path`
        The file offered for ingest.
    stored : `lsst.resources.ResourcePath`
        The file the datastore holds for its datasets.

    Returns
    -------
    difference : `str` or `None`
        `None` if the two hold the same bytes, else how they differ, for a
        message.
    """
    if stored.isLocal:
        try:
            if Path(stored.ospath).samefile(path):
                return None
        except FileNotFoundError:
            return "which is missing from the datastore"
    elif not stored.exists():
        return "which is missing from the datastore"
    size, stored_size = path.stat().st_size, stored.size()
    if size != stored_size:
        return f"whose content differs ({stored_size} bytes, this file {size})"
    if checksum(ResourcePath(path)) != checksum(stored):
        return f"whose content differs (same size, different {CHECKSUM_ALGORITHM} checksum)"
    return None
