"""The simulator's truth for the report: the true sources of every
synthetic pawprint stack (`lsst.obs.vista.sim`), joined over stacks."""

from __future__ import annotations

__all__ = ("SimulatedTruth", "read_simulated_truth")

import dataclasses
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from ..sim import variable_magnitude_offset


@dataclasses.dataclass(frozen=True)
class SimulatedTruth:
    """True sources and the epochs at which the stacks saw them."""

    sources: Table
    """One row per source: ``id``, ``ra``, ``dec`` (deg), ``is_galaxy``,
    ``amplitude`` (mag), ``period`` (d), ``phase`` (rad) and
    ``{band}_flux`` (nJy, the mean flux; NaN where no stack of the band
    holds the source)."""

    epochs: Table
    """One row per stack and source: ``id``, ``band``, ``mjd`` (UTC, the
    time the stack saw its variables) and ``flux`` (nJy)."""

    def flux_at(self, index: int, band: str, mjd: np.ndarray) -> np.ndarray:
        """Return the true flux (nJy) of one source in a band at UTC MJDs.

        Parameters
        ----------
        index : `int`
            Row of the source in `sources`.
        band : `str`
            Band.
        mjd : `numpy.ndarray`
            UTC MJDs.

        Returns
        -------
        flux : `numpy.ndarray`
            The mean flux scaled by the source's variation.
        """
        row = self.sources[index]
        offset = variable_magnitude_offset(row["amplitude"], row["period"], row["phase"], np.asarray(mjd))
        return float(row[f"{band}_flux"]) * 10.0 ** (-0.4 * offset)


def read_simulated_truth(directory: str | Path) -> SimulatedTruth | None:
    """Read the source truth of every simulated pawprint stack in a directory.

    Parameters
    ----------
    directory : `str` or `pathlib.Path`
        The ``truth/`` directory of the simulated stacks.

    Returns
    -------
    truth : `SimulatedTruth` or `None`
        The sources with their mean AB flux per band; `None` if the
        directory holds no stack truth.
    """
    pieces = []
    for path in sorted(Path(directory).glob("*_truth.fits")):
        with fits.open(path) as hdus:
            primary = hdus[0].header
            if primary.get("PRODUCT") != "pawprint_stack" or "BAND" not in primary:
                continue
            for hdu in hdus[1:]:
                if not hdu.name.startswith("SOURCES."):
                    continue
                table = Table(hdu.data)
                mjd = float(hdu.header["MJDMID"])
                offset = variable_magnitude_offset(table["amplitude"], table["period"], table["phase"], mjd)
                flux = (np.asarray(table["mag_ab"]) * u.ABmag).to_value(u.nJy)
                piece = table["id", "ra", "dec", "is_galaxy", "amplitude", "period", "phase"]
                piece["band"] = primary["BAND"]
                piece["mjd"] = mjd
                piece["flux"] = flux
                piece["mean_flux"] = flux * 10.0 ** (0.4 * offset)
                pieces.append(piece)
    if not pieces:
        return None
    epochs = vstack(pieces)
    ids, first = np.unique(np.asarray(epochs["id"]), return_index=True)
    sources = epochs[first]["id", "ra", "dec", "is_galaxy", "amplitude", "period", "phase"]
    for band in sorted(set(epochs["band"])):
        mean = np.full(len(ids), np.nan)
        in_band = np.asarray(epochs["band"]) == band
        mean[np.searchsorted(ids, np.asarray(epochs["id"])[in_band])] = np.asarray(epochs["mean_flux"])[
            in_band
        ]
        sources[f"{band}_flux"] = mean
    return SimulatedTruth(sources=sources, epochs=epochs["id", "band", "mjd", "flux"])
