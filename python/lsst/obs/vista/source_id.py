"""Source IDs unique across a repository, and random seeds from data IDs.

A source ID packs the visit, the detector and the source's running number
in its catalogue into one positive 64-bit integer::

    id = visit_key << (DETECTOR_BITS + ROW_BITS) | detector << ROW_BITS | row

``visit_key`` is the instrument's compact form of the visit ID
(`lsst.obs.vista.PolicyInstrument.compact_visit`), ``row`` counts from 1.
The packing is reversible (`unpack_source_ids`), so an ID says where its
source was measured, and it depends on nothing but the data ID, so a rerun
gives the same IDs.
"""

from __future__ import annotations

__all__ = (
    "DETECTOR_BITS",
    "ROW_BITS",
    "VISIT_BITS",
    "SourceIdGenerator",
    "pack_source_ids",
    "unpack_source_ids",
)

from dataclasses import dataclass

import numpy as np

from .id_packing import BitFieldPacker
from .instrument import policy_instrument

ROW_BITS = 18
"""Bits of the running number: 262,143 sources per detector.  A 2048 x 4096
DECam CCD (the largest detector here) holds one source per 32 pixels then,
denser than detection can separate sources at any seeing these cameras
see (a FWHM of 3 pixels or more)."""

DETECTOR_BITS = 7
"""Bits of the detector ID: IDs up to 127 (DECam's CCDNUM goes to 62,
VIRCAM's detectors to 16)."""

VISIT_BITS = 63 - DETECTOR_BITS - ROW_BITS
"""Bits of the compact visit ID: the rest of 63 bits (2.7e11 visits), the
sign bit staying clear so that IDs are positive in the signed 64-bit
integers of Arrow, Parquet and databases.  DECam's EXPNUM (< 1e8) fits as it
is; VIRCAM's date-based IDs need their compact form."""

_PACKER = BitFieldPacker(
    "source ID", (("visit key", VISIT_BITS), ("detector", DETECTOR_BITS), ("row", ROW_BITS))
)


def pack_source_ids(visit_key: int, detector: int, rows: np.ndarray) -> np.ndarray:
    """Return the source IDs of rows of one detector's catalogue.

    Parameters
    ----------
    visit_key : `int`
        Compact visit ID, ``0 <= visit_key < 2**VISIT_BITS``.
    detector : `int`
        Detector ID, ``0 <= detector < 2**DETECTOR_BITS``.
    rows : `numpy.ndarray` [`int`]
        Running numbers, ``0 <= row < 2**ROW_BITS``.

    Returns
    -------
    ids : `numpy.ndarray` [`numpy.int64`]
        The packed IDs.

    Raises
    ------
    ValueError
        Raised if a part does not fit its bits.
    """
    return _PACKER.pack(visit_key, detector, rows=rows)


def unpack_source_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the compact visit IDs, detectors and rows that IDs were packed from.

    Parameters
    ----------
    ids : `numpy.ndarray` [`int`]
        Source IDs made by `pack_source_ids`.

    Returns
    -------
    visit_keys, detectors, rows : `numpy.ndarray` [`numpy.int64`]
        The parts, in the order `pack_source_ids` takes them.
    """
    visit_keys, detectors, rows = _PACKER.unpack(ids)
    return visit_keys, detectors, rows


@dataclass(frozen=True)
class SourceIdGenerator:
    """Source IDs and random seeds of the catalogue of one visit and detector.

    Parameters
    ----------
    instrument : `str`
        Butler name of the instrument, whose class gives the compact visit
        ID (`lsst.obs.vista.PolicyInstrument.compact_visit`).
    visit : `int`
        Visit ID.
    detector : `int`
        Detector ID.

    Raises
    ------
    LookupError
        Raised if the instrument is not one of this package's.
    ValueError
        Raised if the compact visit ID or the detector does not fit its bits.
    """

    instrument: str
    visit: int
    detector: int

    def __post_init__(self) -> None:
        _PACKER.check("visit key", self.visit_key)
        _PACKER.check("detector", self.detector)

    @property
    def visit_key(self) -> int:
        """The compact visit ID that source IDs pack."""
        return policy_instrument(self.instrument).compact_visit(self.visit)

    @property
    def seed(self) -> int:
        """Seed of every random draw for this visit and detector: the packed
        visit and detector, different for every data ID of a repository."""
        return self.visit_key << DETECTOR_BITS | self.detector

    def make_ids(self, count: int) -> np.ndarray:
        """Return the IDs of a catalogue of ``count`` rows (rows 1 to ``count``).

        Parameters
        ----------
        count : `int`
            Number of sources.

        Returns
        -------
        ids : `numpy.ndarray` [`numpy.int64`]
            The source IDs, in row order.
        """
        return pack_source_ids(self.visit_key, self.detector, np.arange(1, count + 1, dtype=np.int64))
