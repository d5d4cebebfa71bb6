"""Writing multi-extension FITS files one HDU at a time."""

from __future__ import annotations

__all__ = ("FitsFile", "scaled_image_hdu")

import os
from pathlib import Path
from types import TracebackType

import numpy as np
from astropy.io import fits


def scaled_image_hdu(counts: np.ndarray, header: fits.Header) -> fits.ImageHDU:
    """Return an image HDU of integers with the header's BSCALE.

    Parameters
    ----------
    counts : `numpy.ndarray`
        The stored integers (int32).
    header : `astropy.io.fits.Header`
        Header with a BSCALE card; readers see ``counts * BSCALE``.

    Returns
    -------
    hdu : `astropy.io.fits.ImageHDU`
        The HDU, BSCALE at the header's position.
    """
    hdu = fits.ImageHDU(data=counts, header=header)
    # astropy drops BSCALE when given integer data it takes as physical
    # values; the integers here are the stored ones, so the card goes back.
    hdu.header.insert(header.index("BSCALE"), ("BSCALE", header["BSCALE"], header.comments["BSCALE"]))
    hdu.add_checksum()
    return hdu


class FitsFile:
    """A FITS file written HDU by HDU, under its name only once complete.

    Parameters
    ----------
    path : `pathlib.Path`
        Final name of the file (its directory is created if needed).
    primary : `astropy.io.fits.Header`
        Header of the (dataless) primary HDU.

    Notes
    -----
    Until `close`, the file is ``<path>.partial``, so that an interrupted
    run never leaves a truncated product under a product's name.
    """

    def __init__(self, path: Path, primary: fits.Header) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        hdu = fits.PrimaryHDU(header=primary)
        hdu.writeto(self._partial, overwrite=True, checksum=True)

    def append(self, hdu: fits.ImageHDU | fits.BinTableHDU) -> None:
        """Write one more extension.

        Parameters
        ----------
        hdu : `astropy.io.fits.ImageHDU` or `astropy.io.fits.BinTableHDU`
            The extension.
        """
        if "CHECKSUM" not in hdu.header:
            hdu.add_checksum()
        hdus = fits.open(self._partial, mode="append")
        hdus.append(hdu)
        # Verifying on close would check every HDU already in the file at
        # each append (quadratic in their number); the HDUs are built by
        # astropy from valid cards, and the tests verify the whole files.
        hdus.close(output_verify="ignore")

    def close(self) -> None:
        """Give the complete file its name."""
        os.replace(self._partial, self.path)

    def discard(self) -> None:
        """Remove the incomplete file."""
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> FitsFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
