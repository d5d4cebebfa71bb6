"""Fast reading of the headers of a multi-extension FITS file, pixels untouched.

Ingest needs a handful of cards from each of the 17 HDUs of a full-size
CASU stack (about 300 MB).  `astropy.io.fits` parses every card of every
header into objects, which costs ten times more than the ingest needs, so
this module walks the file itself: it reads each header's blocks up to its
END card, skips the data by the size the header declares, and parses only
the cards that are asked for.  Values in the usual forms (logical, integer,
real, quoted string) are parsed here; anything else is left to astropy.

The walk also checks the structure: a file that does not start with SIMPLE,
a header without END, or data that run past the end of the file are
reported as `FitsStructureError` naming the HDU.
"""

from __future__ import annotations

__all__ = ("FitsStructureError", "HduHeader", "MergedHeader", "scan_hdus")

import math
import os
from collections.abc import Iterator, MutableMapping
from typing import Any

from astropy.io import fits

_BLOCK = 2880
_CHUNK = 12 * _BLOCK
"""Bytes read at a time: most headers (up to 430 cards) in one read."""
_CARD = 80
_END = b"END" + b" " * 77


class FitsStructureError(ValueError):
    """Raised when a file is not FITS or is truncated."""


class HduHeader:
    """The header of one HDU, as raw card images with on-demand parsing.

    Parameters
    ----------
    index : `int`
        Position of the HDU in the file (0 is the primary).
    raw : `bytes`
        The header's card images, END excluded.

    Notes
    -----
    A card is found by searching the raw bytes for its keyword at a card
    boundary, which is much faster than splitting 300 cards when only a
    dozen are needed.  When a keyword is repeated the first card wins, as
    for `astropy.io.fits.Header` lookups.
    """

    def __init__(self, index: int, raw: bytes) -> None:
        self.index = index
        self._raw = raw
        self._values: dict[str, Any] = {}

    def _find_card(self, keyword: str) -> str | None:
        """Return the card image of ``keyword`` (upper case), or `None`."""
        standard = len(keyword) <= 8 and " " not in keyword
        encoded = keyword.encode("ascii")
        needle = encoded.ljust(8) + b"= " if standard else b"HIERARCH " + encoded
        start = 0
        while (position := self._raw.find(needle, start)) >= 0:
            if position % _CARD == 0:
                card = self._raw[position : position + _CARD].decode("ascii", errors="replace")
                # A HIERARCH needle also matches longer keywords it prefixes.
                if standard or card[9:].partition("=")[0].strip().upper() == keyword:
                    return card
            start = position + 1
        return None

    def get(self, keyword: str, default: Any = None) -> Any:
        """Return a card's value, or ``default`` if the card is absent.

        Parameters
        ----------
        keyword : `str`
            Keyword, without ``HIERARCH`` for long keywords.
        default : `object`, optional
            Value for an absent card.

        Returns
        -------
        value : `object`
            The parsed value (`bool`, `int`, `float`, `str` without
            trailing blanks, or `None` for a card without a value).
        """
        keyword = keyword.upper()
        if keyword not in self._values:
            card = self._find_card(keyword)
            self._values[keyword] = _ABSENT if card is None else self._parse(card)
        value = self._values[keyword]
        return default if value is _ABSENT else value

    def _parse(self, card: str) -> Any:
        hierarch = card.startswith("HIERARCH ")
        value = _parse_simple_value(card.partition("=")[2] if hierarch else card[10:])
        if value is _NOT_SIMPLE:
            # Complex numbers, CONTINUE'd long strings: let astropy decide.
            keyword = card[9:].partition("=")[0] if hierarch else card[:8]
            value = self.to_header()[keyword.strip()]
        return value

    def keywords(self) -> list[str]:
        """Return the keywords of the cards with a value, in header order.

        Returns
        -------
        keywords : `list` [`str`]
            Keywords (HIERARCH ones without the prefix), each once.
        """
        keywords: dict[str, None] = {}
        text = self._raw.decode("ascii", errors="replace")
        for start in range(0, len(text), _CARD):
            card = text[start : start + _CARD]
            if card[8:10] == "= ":
                keywords[card[:8].rstrip()] = None
            elif card.startswith("HIERARCH ") and "=" in card:
                keywords[card[9:].partition("=")[0].strip().upper()] = None
        return list(keywords)

    def card_images(self, prefixes: tuple[str, ...]) -> str:
        """Return the cards whose keywords start with any of ``prefixes``.

        Parameters
        ----------
        prefixes : `tuple` [`str`, ...]
            Keyword prefixes, e.g. ``("CTYPE", "CRVAL")``.

        Returns
        -------
        text : `str`
            The matching 80-character cards concatenated, in header order,
            as WCSLIB's header parser accepts them.
        """
        text = self._raw.decode("ascii", errors="replace")
        starts = range(0, len(text), _CARD)
        return "".join(text[start : start + _CARD] for start in starts if text.startswith(prefixes, start))

    def to_header(self) -> fits.Header:
        """Return the whole header parsed by astropy.

        Returns
        -------
        header : `astropy.io.fits.Header`
            Every card, in order.
        """
        return fits.Header.fromstring(self._raw.decode("ascii", errors="replace"))

    @property
    def extname(self) -> str | None:
        """EXTNAME, or `None` if absent."""
        return self.get("EXTNAME")

    @property
    def is_compressed_image(self) -> bool:
        """Whether this is a tile-compressed image (fpack) stored as a table."""
        return self.get("XTENSION") == "BINTABLE" and bool(self.get("ZIMAGE", False))

    @property
    def kind(self) -> str | None:
        """``image``, ``table`` or `None` for an HDU without data."""
        if self.is_compressed_image:
            return "image"
        xtension = self.get("XTENSION")
        if xtension in ("BINTABLE", "TABLE"):
            return "table"
        return "image" if self.get("NAXIS", 0) else None

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape, slowest axis first; ``(rows,)`` for a table."""
        if self.is_compressed_image:
            prefix = "ZNAXIS"
        elif self.kind == "table":
            return (int(self.get("NAXIS2", 0)),)
        else:
            prefix = "NAXIS"
        naxis = int(self.get(prefix, 0))
        return tuple(int(self.get(f"{prefix}{axis}")) for axis in range(naxis, 0, -1))

    @property
    def data_size(self) -> int:
        """Size in bytes of the data that follow the header, unpadded."""
        naxis = int(self.get("NAXIS", 0))
        if naxis == 0:
            return 0
        elements = math.prod(int(self.get(f"NAXIS{axis}", 0)) for axis in range(1, naxis + 1))
        bytes_per_element = abs(int(self.get("BITPIX"))) // 8
        return bytes_per_element * int(self.get("GCOUNT", 1)) * (int(self.get("PCOUNT", 0)) + elements)


def scan_hdus(path: str | os.PathLike[str]) -> list[HduHeader]:
    """Read the headers of every HDU of a FITS file.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        The file.

    Returns
    -------
    hdus : `list` [`HduHeader`]
        One header per HDU, primary first.

    Raises
    ------
    FitsStructureError
        Raised if the file is empty or not FITS, a header has no END card,
        or an HDU's data extend past the end of the file (truncation).
    OSError
        Raised if the file cannot be read.
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(descriptor).st_size
        if size == 0:
            raise FitsStructureError("empty file")
        if hasattr(os, "posix_fadvise"):
            # Only header blocks are read: no read-ahead into the pixels (in
            # a sparse file that would fill the page cache with zeros).
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_RANDOM)
        if not os.pread(descriptor, 10, 0) == b"SIMPLE  = ":
            raise FitsStructureError("not a FITS file (does not start with SIMPLE)")
        hdus: list[HduHeader] = []
        offset = 0
        while offset < size:
            if hdus and os.pread(descriptor, 8, offset) != b"XTENSION":
                # Some writers pad the file beyond the last HDU.
                if os.pread(descriptor, _BLOCK, offset).strip(b"\0 "):
                    raise FitsStructureError(f"unexpected bytes after HDU {len(hdus) - 1}")
                break
            cards, header_size = _read_header(descriptor, offset, len(hdus))
            hdu = HduHeader(len(hdus), cards)
            data_start = offset + header_size
            if data_start + hdu.data_size > size:
                raise FitsStructureError(
                    f"truncated: HDU {hdu.index} needs {data_start + hdu.data_size} bytes, "
                    f"the file has {size}"
                )
            hdus.append(hdu)
            offset = data_start + _padded(hdu.data_size)
    finally:
        os.close(descriptor)
    return hdus


def _read_header(descriptor: int, offset: int, index: int) -> tuple[bytes, int]:
    """Return the cards (END excluded) of the header at ``offset`` and the
    header's size in the file (whole blocks)."""
    chunks: list[bytes] = []
    position = offset
    while True:
        chunk = os.pread(descriptor, _CHUNK, position)
        chunk = chunk[: len(chunk) - len(chunk) % _BLOCK]
        if not chunk:
            raise FitsStructureError(f"truncated: HDU {index} has no END card")
        # Chunks are whole blocks, so card boundaries are multiples of 80
        # within each; END found elsewhere is text inside a card.
        start = 0
        while (found := chunk.find(_END, start)) >= 0:
            if found % _CARD == 0:
                chunks.append(chunk[:found])
                return b"".join(chunks), position - offset + _padded(found + _CARD)
            start = found + 1
        chunks.append(chunk)
        position += len(chunk)


class MergedHeader(MutableMapping[str, Any]):
    """Several HDU headers seen as one, as a primary header updated with an
    extension header: a keyword takes its value from the last header that
    has it.

    Parameters
    ----------
    *hdus : `HduHeader`
        Headers in increasing priority.

    Notes
    -----
    Values are parsed when looked up, so translating a header costs the
    dozens of cards the translator reads, not the hundreds it holds.
    Assignments (header translation marks the headers it has fixed up) are
    kept in an overlay; the files are never modified.
    """

    def __init__(self, *hdus: HduHeader) -> None:
        self._hdus = hdus[::-1]
        self._overlay: dict[str, Any] = {}

    def __getitem__(self, keyword: str) -> Any:
        value = self._overlay.get(keyword, _ABSENT)
        for hdu in self._hdus:
            if value is not _ABSENT:
                break
            value = hdu.get(keyword, _ABSENT)
        if value is _ABSENT or value is _DELETED:
            raise KeyError(keyword)
        return value

    def __setitem__(self, keyword: str, value: Any) -> None:
        self._overlay[keyword] = value

    def __delitem__(self, keyword: str) -> None:
        self[keyword]  # Raises KeyError if absent.
        self._overlay[keyword] = _DELETED

    def __iter__(self) -> Iterator[str]:
        keywords = dict.fromkeys(k for hdu in reversed(self._hdus) for k in hdu.keywords())
        keywords.update(dict.fromkeys(self._overlay))
        return (k for k in keywords if self._overlay.get(k) is not _DELETED)

    def __len__(self) -> int:
        return sum(1 for _ in self)


_NOT_SIMPLE = object()
_ABSENT = object()
_DELETED = object()


def _parse_simple_value(field: str) -> Any:
    """Parse the value part of a card (after ``= ``) in the common forms:
    logical, integer, real, quoted string (``''`` escapes a quote), blank.

    Returns ``_NOT_SIMPLE`` for anything else, including a string that
    continues on CONTINUE cards.
    """
    field = field.lstrip()
    if field.startswith("'"):
        end = 1
        while True:
            end = field.find("'", end)
            if end < 0:
                return _NOT_SIMPLE
            if field.startswith("''", end):
                end += 2
                continue
            break
        text = field[1:end].replace("''", "'").rstrip()
        return _NOT_SIMPLE if text.endswith("&") else text
    token = field.partition("/")[0].strip()
    if token == "T":
        return True
    if token == "F":
        return False
    if not token:
        return None
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token.replace("D", "E").replace("d", "e"))
    except ValueError:
        return _NOT_SIMPLE


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK
