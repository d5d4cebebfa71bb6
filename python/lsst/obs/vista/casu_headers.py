"""The real VIRCAM CASU header dumps shipped with the package.

They are the templates of the synthetic VIRCAM files and the fixtures of
the header translator tests; see ``data/vircam_headers/README.md``.
"""

from __future__ import annotations

__all__ = ("HEADER_DIR", "read_header_dump")

from pathlib import Path

from astropy.io import fits

from ._resources import PACKAGE_DIR

HEADER_DIR = PACKAGE_DIR / "data" / "vircam_headers"
"""Directory of the ``*.hdr.txt`` dumps."""


def read_header_dump(name: str | Path) -> fits.Header:
    """Read one header dump into an `astropy.io.fits.Header`.

    Parameters
    ----------
    name : `str` or `pathlib.Path`
        A dump's file name (e.g. ``"4_cell8"`` or ``"4_cell8.hdr.txt"``)
        or path.

    Returns
    -------
    header : `astropy.io.fits.Header`
        The cards, in their original order, without the provenance comment
        lines that start the dump.
    """
    path = Path(name)
    if not path.is_absolute() and path.parent == Path("."):
        path = HEADER_DIR / (path.name if path.name.endswith(".hdr.txt") else f"{path.name}.hdr.txt")
    lines = [line for line in path.read_text().splitlines() if not line.startswith("# ")]
    return fits.Header.fromstring("\n".join(lines), sep="\n")
