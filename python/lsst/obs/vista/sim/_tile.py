"""Synthetic CASU tiles: six pawprint stacks mosaicked, with exact truth.

The tile is a TAN projection at the tile centre with the stacks' pixel
size and orientation.  Each tile pixel takes the bilinear interpolation of
every stack pixel grid that covers it, weighted by the stacks' confidence::

    T_q = sum_sa W_sa S_sa / sum_sa W_sa,   W_sa = alpha_a C_s(p_a)

(s the stack and detector, a the four taps at stack pixels p_a with
bilinear weights alpha_a).  The stacks' pixels are correlated by their own
bilinear resampling, so the exact variance needs their covariances with
the neighbours, which the stacks' truth (COVAR) holds::

    var(T_q) = [sum_s (sum_a W_a**2 V(p_a)
                       + 2 sum_{a<b} W_a W_b cov(p_a, p_b))] / (sum W)**2
               + BSCALE_tile**2 / 12

Stacks of different pawprints or detectors are independent, and the
rounding of the stacks (in V) is independent between their pixels.
"""

from __future__ import annotations

__all__ = ("SimulatedTile", "write_tile")

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy.interpolate import RectBivariateSpline

from ..psf_shape import FWHM_PER_SIGMA
from ._catalog import TrueSources, catalog_hdu, tile_catalog_header
from ._config import SimulationConfig
from ._files import FitsFile, scaled_image_hdu
from ._geometry import header_wcs, sky_frame
from ._headers import SIMULATE_CARD, confidence_header, tile_image_header
from ._pawprint import SimulatedStack
from ._psf import detector_mean_psf_variance
from ._schedule import OFFSETS_PER_TILE
from ._sky import sky_catalog
from ._stack import DetectorNoise
from ._truth import VARIANCE_COMMENT, robust_sky_noise, truth_path, wcs_cards

_NODE_SPACING = 16
"""Tile pixels between the nodes at which the exact tile-to-stack mapping
is computed; a bicubic spline through them matches it to < 1e-8 pixel."""

_RESAMPLING_VARIANCE = 1.0 / 6.0
"""Mean over sub-pixel positions of the bilinear kernel's variance t (1 - t)."""

# Covariance terms of the bilinear taps 00, 10, 01, 11 (x, y offsets):
# (tap a, tap b, COVAR plane, tap whose pixel anchors the plane's lag).
_PAIRS = (
    (0, 1, 0, 0),  # lag (1, 0) from p00
    (2, 3, 0, 2),  # lag (1, 0) from p01
    (0, 2, 1, 0),  # lag (0, 1) from p00
    (1, 3, 1, 1),  # lag (0, 1) from p10
    (0, 3, 2, 0),  # lag (1, 1) from p00
    (2, 1, 3, 2),  # lag (1, -1) from p01 to p10
)
_TAPS = ((0, 0), (1, 0), (0, 1), (1, 1))


@dataclasses.dataclass(frozen=True)
class SimulatedTile:
    """The files of one synthetic tile."""

    stem: str
    """File name stem, e.g. ``v20120924_00100_st_tl``."""

    tile: Path
    """The image, ``<stem>.fit``."""

    confidence: Path
    """Its confidence map, ``<stem>_conf.fit``."""

    catalog: Path
    """The catalogue of true sources, ``<stem>_cat.fits``."""

    truth: Path
    """The truth sidecar, ``truth/<stem>_truth.fits``."""


@dataclasses.dataclass(frozen=True)
class _TilePixels:
    """The tile and its truth."""

    counts: np.ndarray
    """Written pixel values, int32 (physical value = counts x BSCALE)."""
    confidence: np.ndarray
    """Confidence, int16 percent (median 100; 0 where no data)."""
    model: np.ndarray
    variance: np.ndarray
    sky: np.ndarray
    """True sky level of every pixel (the stacks' skies, weighted)."""


class _Accumulator:
    """Sums over the stacks for every tile pixel.

    float32: a full-size tile has 2e8 pixels, and a pixel's sums have at
    most a few dozen positive terms.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.weighted, self.weight, self.expected, self.variance, self.sky = (
            np.zeros(shape, np.float32) for _ in range(5)
        )

    def add(
        self,
        box: tuple[slice, slice],
        coordinates: tuple[np.ndarray, np.ndarray],
        planes: dict[str, np.ndarray],
        sky: float,
    ) -> None:
        """Resample one detector of one stack onto a box of the tile.

        Parameters
        ----------
        box : `tuple` [`slice`, `slice`]
            Rows and columns of the tile that the stack may cover.
        coordinates : `tuple` [`numpy.ndarray`, `numpy.ndarray`]
            Stack pixel coordinates (x, y) of the box's pixel centres.
        planes : `dict` [`str`, `numpy.ndarray`]
            The stack's image, confidence, model, variance and covariance.
        sky : `float`
            The stack's true sky level.
        """
        x, y = coordinates
        ny, nx = planes["image"].shape
        inside = (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
        x, y = x[inside], y[inside]
        x0 = np.minimum(np.floor(x).astype(np.intp), nx - 2)
        y0 = np.minimum(np.floor(y).astype(np.intp), ny - 2)
        tx, ty = x - x0, y - y0
        alphas = ((1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty)
        taps = [(y0 + dy) * nx + (x0 + dx) for dx, dy in _TAPS]
        confidence = planes["confidence"].ravel()
        weights = [alpha * confidence[tap] for alpha, tap in zip(alphas, taps, strict=True)]
        weighted, expected, variance = (np.zeros(len(x)) for _ in range(3))
        for weight, tap in zip(weights, taps, strict=True):
            weighted += weight * planes["image"].ravel()[tap]
            expected += weight * planes["model"].ravel()[tap]
            variance += weight * weight * planes["variance"].ravel()[tap]
        for a, b, plane, anchor in _PAIRS:
            variance += 2.0 * weights[a] * weights[b] * planes["covariance"][plane].ravel()[taps[anchor]]
        total = sum(weights)
        target = np.nonzero(inside)
        for accumulated, value in (
            (self.weighted, weighted),
            (self.weight, total),
            (self.expected, expected),
            (self.variance, variance),
            (self.sky, total * sky),
        ):
            accumulated[box][target] += value

    def finish(self, bscale: float) -> _TilePixels:
        """Return the tile and its truth, in place of the sums.

        Parameters
        ----------
        bscale : `float`
            Quantisation step of the written pixels.

        Returns
        -------
        pixels : `_TilePixels`
            The tile, its confidence normalised to median 100, its truth.
        """
        weight = self.weight
        sample = weight[::3, ::3]
        confidence = weight * np.float32(100.0 / np.median(sample[sample > 0]))
        confidence = np.rint(confidence, out=confidence).astype(np.int16)
        no_data = confidence == 0
        with np.errstate(divide="ignore"):
            inverse = np.divide(np.float32(1.0), weight, out=weight)
        inverse[no_data] = 0.0
        image = self.weighted
        image *= inverse
        image *= np.float32(1.0 / bscale)
        counts = np.rint(image, out=image).astype(np.int32)
        for array in (self.expected, self.variance, self.sky):
            array *= inverse
        self.variance *= inverse
        self.variance += np.float32(bscale**2 / 12.0)
        for array in (self.expected, self.variance, self.sky):
            array[no_data] = np.nan
        return _TilePixels(
            counts=counts, confidence=confidence, model=self.expected, variance=self.variance, sky=self.sky
        )


@dataclasses.dataclass(frozen=True)
class _TileGrid:
    """The tile's pixel grid in the tile's sky frame."""

    origin: tuple[int, int]
    """Sky-frame pixel (x, y) of the tile's pixel (0, 0)."""
    shape: tuple[int, int]
    """``(ny, nx)`` of the tile."""

    @classmethod
    def covering(cls, footprints: list[tuple[np.ndarray, np.ndarray]]) -> _TileGrid:
        """Return the smallest grid that covers the footprints."""
        low_x = math.floor(min(x.min() for x, _ in footprints))
        low_y = math.floor(min(y.min() for _, y in footprints))
        high_x = math.ceil(max(x.max() for x, _ in footprints))
        high_y = math.ceil(max(y.max() for _, y in footprints))
        return cls(origin=(low_x, low_y), shape=(high_y - low_y + 1, high_x - low_x + 1))

    def wcs_cards(self, config: SimulationConfig) -> dict[str, float]:
        """Return CRVAL, CRPIX and CD of the tile's TAN WCS."""
        cd = sky_frame(config).wcs.cd
        return {
            "CRVAL1": config.ra % 360.0,
            "CRVAL2": config.dec,
            "CRPIX1": 1.0 - self.origin[0],
            "CRPIX2": 1.0 - self.origin[1],
            "CD1_1": cd[0, 0],
            "CD1_2": cd[0, 1],
            "CD2_1": cd[1, 0],
            "CD2_2": cd[1, 1],
        }

    def box(self, footprint: tuple[np.ndarray, np.ndarray]) -> tuple[slice, slice]:
        """Return the tile rows and columns within a footprint's bounds."""
        x, y = footprint
        low_x, low_y = self.origin
        return (
            slice(max(0, math.floor(y.min()) - low_y), min(self.shape[0], math.ceil(y.max()) - low_y + 1)),
            slice(max(0, math.floor(x.min()) - low_x), min(self.shape[1], math.ceil(x.max()) - low_x + 1)),
        )


def _stack_inputs(
    stacks: Sequence[SimulatedStack], config: SimulationConfig
) -> list[tuple[SimulatedStack, fits.Header]]:
    """Check that the stacks make one tile; return them with their primary
    headers in offset order."""
    if len(stacks) != OFFSETS_PER_TILE:
        raise ValueError(f"a tile needs {OFFSETS_PER_TILE} pawprint stacks, not {len(stacks)}")
    inputs = sorted(((s, fits.getheader(s.stack, 0)) for s in stacks), key=lambda pair: pair[1]["OFFSET_I"])
    sequences = {(h["ESO OBS ID"], h["OFFSTNUM"]) for _, h in inputs}
    if len(sequences) != 1 or [h["OFFSET_I"] for _, h in inputs] != list(range(1, OFFSETS_PER_TILE + 1)):
        raise ValueError("the stacks are not the offsets 1-6 of one OB's offset sequence")
    for stack, _ in inputs:
        truth = fits.getheader(stack.truth, 0)
        if (truth["SEED"], truth["SIZE"]) != (config.seed, config.size):
            raise ValueError(f"{stack.stem} was made with another seed or size than this configuration")
    return inputs


def _footprint(header: fits.Header, frame: WCS) -> tuple[np.ndarray, np.ndarray]:
    """Return the sky-frame pixel coordinates of points along the edges of
    a stack's grid."""
    ny, nx = header["NAXIS2"], header["NAXIS1"]
    xs = np.linspace(-0.5, nx - 0.5, 9)
    ys = np.linspace(-0.5, ny - 0.5, 9)
    edge_x = np.concatenate([xs, xs, np.full(9, -0.5), np.full(9, nx - 0.5)])
    edge_y = np.concatenate([np.full(9, -0.5), np.full(9, ny - 0.5), ys, ys])
    ra, dec = header_wcs(header).pixel_to_world_values(edge_x, edge_y)
    return frame.world_to_pixel_values(ra, dec)


def _stack_coordinates(
    tile_wcs: WCS, stack_wcs: WCS, box: tuple[slice, slice]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the stack pixel coordinates of the tile pixel centres in a
    box, from the exact mapping at spline nodes."""
    rows, columns = box
    node_x = np.linspace(
        columns.start, columns.stop - 1, max(4, (columns.stop - columns.start) // _NODE_SPACING + 2)
    )
    node_y = np.linspace(rows.start, rows.stop - 1, max(4, (rows.stop - rows.start) // _NODE_SPACING + 2))
    grid_x, grid_y = np.meshgrid(node_x, node_y)
    ra, dec = tile_wcs.pixel_to_world_values(grid_x, grid_y)
    stack_x, stack_y = stack_wcs.world_to_pixel_values(ra, dec)
    pixels_x = np.arange(columns.start, columns.stop)
    pixels_y = np.arange(rows.start, rows.stop)
    return (
        RectBivariateSpline(node_y, node_x, stack_x)(pixels_y, pixels_x),
        RectBivariateSpline(node_y, node_x, stack_y)(pixels_y, pixels_x),
    )


def _read_planes(stack: SimulatedStack, name: str) -> dict[str, np.ndarray]:
    """Read one detector of a stack and its truth; no-data NaNs become 0
    (their weight is 0)."""
    with fits.open(stack.stack) as image, fits.open(stack.confidence) as confidence:
        planes = {
            "image": image[name].data.astype(np.float64),
            "confidence": confidence[name].data.astype(np.float64),
        }
    with fits.open(stack.truth) as truth:
        for key, extension in (("model", "MODEL"), ("variance", "VARIANCE"), ("covariance", "COVAR")):
            planes[key] = np.nan_to_num(truth[f"{extension}.{name}"].data.astype(np.float64))
    return planes


def write_tile(
    outdir: str | Path, stacks: Sequence[SimulatedStack], config: SimulationConfig
) -> SimulatedTile:
    """Mosaic the six pawprint stacks of one offset sequence into a tile.

    Parameters
    ----------
    outdir : `str` or `pathlib.Path`
        Directory of the products; the truth goes to ``truth/``.
    stacks : `~collections.abc.Sequence` [`SimulatedStack`]
        The six stacks of one OB (``OFFSET_I`` 1-6), in any order, made with
        this ``config``.
    config : `SimulationConfig`
        The simulation.

    Returns
    -------
    tile : `SimulatedTile`
        The files written: tile, confidence map, catalogue (one table) and
        truth (VARIANCE, MODEL and the true SKY of every pixel).

    Notes
    -----
    A full-size tile (16 detectors of 2048 pixels) has about 12800 x 15700
    pixels and takes about 3 minutes and 6 GB of memory.
    """
    outdir = Path(outdir)
    inputs = _stack_inputs(stacks, config)
    ordered = [stack for stack, _ in inputs]
    primary = inputs[0][1]
    stem = f"{ordered[0].stem}_tl"
    result = SimulatedTile(
        stem=stem,
        tile=outdir / f"{stem}.fit",
        confidence=outdir / f"{stem}_conf.fit",
        catalog=outdir / f"{stem}_cat.fits",
        truth=truth_path(outdir, stem),
    )
    frame = sky_frame(config)
    headers = [
        (stack, fits.getheader(stack.stack, f"DET1.CHIP{detector_id}"))
        for stack in ordered
        for detector_id in config.detectors
    ]
    footprints = [_footprint(header, frame) for _, header in headers]
    grid = _TileGrid.covering(footprints)
    # The stacks' PSFs plus the mean blur of the tile's own resampling.
    seeing_variance = np.mean([(h["SEEING"] / FWHM_PER_SIGMA) ** 2 for _, h in headers])
    seeing = FWHM_PER_SIGMA * math.sqrt(seeing_variance + _RESAMPLING_VARIANCE)
    image_header = tile_image_header(
        primary, stem, [s.stem for s in ordered], grid.wcs_cards(config), seeing, config
    )
    tile_wcs = header_wcs(image_header)

    sums = _Accumulator(grid.shape)
    for (stack, header), footprint in zip(headers, footprints, strict=True):
        box = grid.box(footprint)
        coordinates = _stack_coordinates(tile_wcs, header_wcs(header), box)
        sums.add(box, coordinates, _read_planes(stack, header["EXTNAME"]), header["SKYLEVEL"])
    pixels = sums.finish(config.tile_bscale)
    del sums

    sky_noise = robust_sky_noise(
        pixels.counts,
        config.tile_bscale,
        pixels.model,
        pixels.variance,
        pixels.confidence,
        pixels.sky,
    )
    tile_hdu = scaled_image_hdu(pixels.counts, image_header)
    with FitsFile(result.tile, primary) as tile_file:
        tile_file.append(tile_hdu)
    with FitsFile(result.confidence, primary) as confidence_file:
        confidence_file.append(fits.ImageHDU(data=pixels.confidence, header=confidence_header(image_header)))
    with FitsFile(result.catalog, primary) as catalog_file:
        catalog_file.append(_tile_catalog(pixels, tile_hdu.header, primary, sky_noise, config))
    with FitsFile(result.truth, _truth_primary(stem, ordered, sky_noise, seeing, config)) as truth_file:
        for name, data, unit in (
            ("VARIANCE", pixels.variance, "adu**2"),
            ("MODEL", pixels.model, "adu"),
            ("SKY", pixels.sky, "adu"),
        ):
            hdu = fits.ImageHDU(data=data, name=name)
            hdu.header["BUNIT"] = unit
            for card in wcs_cards(tile_hdu.header):
                hdu.header.append(card, end=True)
            truth_file.append(hdu)
    return result


def _tile_catalog(
    pixels: _TilePixels,
    image_header: fits.Header,
    primary: fits.Header,
    sky_noise: float,
    config: SimulationConfig,
) -> fits.BinTableHDU:
    """Return the catalogue table of the true sources in the tile."""
    sample = pixels.sky[::3, ::3]
    sky_level = float(np.median(sample[np.isfinite(sample)]))
    saturation = np.mean([DetectorNoise.for_detector(d, config).saturation_level for d in config.detectors])
    header = tile_catalog_header(image_header, primary, sky_level, sky_noise, float(saturation))
    wcs = header_wcs(image_header)
    sources = sky_catalog(config)
    found, confidence = TrueSources.select(sources, sources.flux(config), wcs, pixels.confidence)
    local_sky = pixels.sky[np.rint(found.y).astype(int), np.rint(found.x).astype(int)]
    # The tile mixes every part of the detectors: their mean exposure PSF.
    psf_variance = detector_mean_psf_variance(config)
    return catalog_hdu(found, confidence, wcs, psf_variance, local_sky, sky_noise, header, image_header)


def _truth_primary(
    stem: str, stacks: list[SimulatedStack], sky_noise: float, seeing: float, config: SimulationConfig
) -> fits.Header:
    """Return the primary header of a tile's truth file."""
    header = fits.Header([SIMULATE_CARD])
    header["PRODUCT"] = ("tile", "kind of CASU product")
    header["STEM"] = (stem, "the product is <STEM>.fit")
    header["SEED"] = (config.seed, "random seed of the simulation")
    header["SIZE"] = (config.size, "detector side (pixels)")
    for number, stack in enumerate(stacks, start=1):
        header[f"STACK{number}"] = (stack.stem, f"pawprint stack of OFFSET_I = {number}")
    header["IMBSCALE"] = (config.tile_bscale, "BSCALE (quantisation step) of the tile")
    header["QUANTVAR"] = (config.tile_bscale**2 / 12.0, "[adu2] BSCALE**2/12 in VARIANCE")
    header["SKYNOISE"] = (round(sky_noise, 2), "[adu] SKYNOISE of the tile catalogue")
    header["SEEING"] = (seeing, "[pixel] mean FWHM of the tile PSF (approximate)")
    for line in VARIANCE_COMMENT:
        header.add_comment(line)
    header.add_comment("Tile: bilinear, conf-weighted mosaic of the stacks; VARIANCE includes")
    header.add_comment("the stacks' neighbour covariances (COVAR) and is exact.")
    return header
