"""CASU-format source catalogues of the true sources.

The tables have the 80 columns of a real CASU catalogue (``2_cell111``);
only the columns with an exact true value are filled (see
`TRUTH_COLUMNS_COMMENT`), the others are 0.
"""

from __future__ import annotations

__all__ = (
    "TRUTH_COLUMNS_COMMENT",
    "TrueSources",
    "catalog_hdu",
    "stack_catalog_header",
    "tile_catalog_header",
)

import dataclasses
import math
import re

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ._render import exponential_mixture
from ._sky import SkyCatalog
from ._templates import CATALOG_COLUMNS, catalog_template

TRUTH_COLUMNS_COMMENT = (
    "Catalogue of the true sources (lsst.obs.vista.sim), not of detections.",
    "Isophotal_flux, Petr_flux, Kron_flux: true total flux (ADU per DIT).",
    "X/Y_coordinate: true centre (1-based pixels); RA, DEC (radians) from",
    "the WCS.  Gaussian_sigma, Ellipticity, Position_angle: second moments",
    "of the profile in one exposure (intrinsic profile convolved with the",
    "PSF); Position_angle of the major axis in degrees from +x towards +y.",
    "Classification: -1 star, 1 galaxy.  Sky_level, Sky_rms: true sky and",
    "SKYNOISE.  Av_conf: confidence at the centre.  Other columns are 0.",
)
"""COMMENT cards that say what the catalogue columns hold."""

# Cards of the image-source detection (CASU imcore) that a catalogue
# header carries after those of its image.
_IMCORE_CARDS = (
    "THRESHOL",
    "MINPIX",
    "CROWDED",
    "RCORE",
    "FILTFWHM",
    "NBSIZE",
    "CLASSIFD",
    "SATURATE",
    "MJD_DAY",
)

_IMAGE_ONLY = re.compile(
    r"(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|BSCALE|BZERO|CTYPE\d|CRVAL\d|CRPIX\d|CD\d_\d|PV\d_\d+|PROJP\d)$"
)


@dataclasses.dataclass(frozen=True)
class TrueSources:
    """The true sources whose centres lie in one image."""

    x: np.ndarray
    """Centre (0-based pixels)."""
    y: np.ndarray
    sources: SkyCatalog
    """The sources themselves."""
    flux: np.ndarray
    """Total flux (ADU per DIT)."""

    @classmethod
    def select(
        cls, sky: SkyCatalog, flux: np.ndarray, wcs: WCS, confidence: np.ndarray
    ) -> tuple[TrueSources, np.ndarray]:
        """Return the sources whose centres land on data of an image.

        Parameters
        ----------
        sky : `SkyCatalog`
            All sources.
        flux : `numpy.ndarray`
            Their fluxes.
        wcs : `astropy.wcs.WCS`
            WCS of the image.
        confidence : `numpy.ndarray`
            Confidence map of the image.

        Returns
        -------
        sources : `TrueSources`
            The sources with confidence > 0 at their centres' pixels.
        confidence : `numpy.ndarray`
            That confidence.
        """
        x, y = wcs.world_to_pixel_values(sky.ra, sky.dec)
        ny, nx = confidence.shape
        ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        conf = np.zeros(len(x), confidence.dtype)
        conf[inside] = confidence[iy[inside], ix[inside]]
        keep = conf > 0
        chosen = SkyCatalog(**{f.name: getattr(sky, f.name)[keep] for f in dataclasses.fields(SkyCatalog)})
        return cls(x=x[keep], y=y[keep], sources=chosen, flux=flux[keep]), conf[keep]


def _moments(
    sources: SkyCatalog, psf_variance: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return sigma, ellipticity and position angle (deg) of each profile."""
    fractions, sigmas = exponential_mixture()
    scale = float(np.sum(fractions * sigmas**2))
    major = scale * sources.radius**2 + psf_variance
    minor = scale * (sources.radius * sources.axis_ratio) ** 2 + psf_variance
    sigma = np.sqrt(0.5 * (major + minor))
    ellipticity = 1.0 - np.sqrt(minor / major)
    angle = np.where(sources.galaxy, np.degrees(sources.angle), 0.0)
    return sigma, ellipticity, angle


def catalog_hdu(
    found: TrueSources,
    confidence: np.ndarray,
    wcs: WCS,
    psf_variance: float | np.ndarray,
    sky_level: float | np.ndarray,
    sky_noise: float,
    header: fits.Header,
    image_header: fits.Header,
) -> fits.BinTableHDU:
    """Return a CASU catalogue table of true sources.

    Parameters
    ----------
    found : `TrueSources`
        The sources in the image.
    confidence : `numpy.ndarray`
        Confidence at each source's centre.
    wcs : `astropy.wcs.WCS`
        WCS of the image (for RA, DEC of the centres).
    psf_variance : `float` or `numpy.ndarray`
        sigma**2 (pixels**2) of a single exposure's PSF, for all sources or
        for each.
    sky_level : `float` or `numpy.ndarray`
        Sky level (per source, or SKYLEVEL).
    sky_noise : `float`
        SKYNOISE of the image.
    header : `astropy.io.fits.Header`
        Non-column cards of the table.
    image_header : `astropy.io.fits.Header`
        Header of the image, whose WCS the X and Y columns carry.

    Returns
    -------
    hdu : `astropy.io.fits.BinTableHDU`
        The table with the real CASU column definitions.
    """
    n = len(found.x)
    sigma, ellipticity, angle = _moments(found.sources, psf_variance)
    ra, dec = wcs.pixel_to_world_values(found.x, found.y)
    values = {
        "Sequence_number": np.arange(1, n + 1),
        "Isophotal_flux": found.flux,
        "Petr_flux": found.flux,
        "Kron_flux": found.flux,
        "X_coordinate": found.x + 1.0,
        "Y_coordinate": found.y + 1.0,
        "Gaussian_sigma": sigma,
        "Ellipticity": ellipticity,
        "Position_angle": angle,
        "Sky_level": np.broadcast_to(sky_level, (n,)),
        "Sky_rms": np.full(n, sky_noise),
        "Av_conf": confidence,
        "RA": np.radians(ra),
        "DEC": np.radians(dec),
        "Classification": np.where(found.sources.galaxy, 1.0, -1.0),
    }
    attributes, wcs_cards = _column_wcs(image_header)
    columns = [
        fits.Column(
            name=column.name,
            format=column.format,
            unit=column.unit,
            array=np.asarray(values.get(column.name, np.zeros(n)), dtype=np.float32),
            **attributes.get(column.name, {}),
        )
        for column in CATALOG_COLUMNS
    ]
    hdu = fits.BinTableHDU.from_columns(columns, header=header)
    for number, column in enumerate(CATALOG_COLUMNS, start=1):
        hdu.header.comments[f"TTYPE{number}"] = column.comment
    for card in wcs_cards:
        if card.keyword in hdu.header:
            hdu.header[card.keyword] = card.value
        else:
            hdu.header.append(card, end=True)
    for line in TRUTH_COLUMNS_COMMENT:
        hdu.header.add_comment(line)
    return hdu


def _column_wcs(image: fits.Header) -> tuple[dict[str, dict[str, object]], list[fits.Card]]:
    """Return the image WCS in the pixel-list form of the X (column 3) and
    Y (column 5) coordinates, as CASU catalogues carry it: the column
    attributes (TCTYPn, TCRVLn, TCRPXn) and the matrix (TCn_k, which CASU
    fills with the CD matrix) and projection (TV5_m) cards."""
    columns = {1: 3, 2: 5}
    attributes = {
        name: {
            "coord_type": image[f"CTYPE{axis}"],
            "coord_ref_value": image[f"CRVAL{axis}"],
            "coord_ref_point": image[f"CRPIX{axis}"],
        }
        for name, axis in (("X_coordinate", 1), ("Y_coordinate", 2))
    }
    cards = [fits.Card(f"TC{columns[i]}_{columns[j]}", image[f"CD{i}_{j}"]) for i in columns for j in columns]
    for key in image:
        match = re.fullmatch(r"PV2_(\d+)", key)
        if match:
            cards.append(fits.Card(f"TV5_{match.group(1)}", image[key]))
    return attributes, cards


def stack_catalog_header(image: fits.Header, saturation: float, mjd_day: int) -> fits.Header:
    """Return the non-column cards of one detector of a stack catalogue.

    Parameters
    ----------
    image : `astropy.io.fits.Header`
        Header of the matching image extension.
    saturation : `float`
        Saturation level of the stack (SATURATE, gain-normalised ADU).
    mjd_day : `int`
        Integer MJD of the observation (MJD_DAY).

    Returns
    -------
    header : `astropy.io.fits.Header`
        The image's cards (observation, detector, photometry, provenance)
        without its image WCS, then the catalogue cards of the real CASU
        catalogue.
    """
    header = fits.Header([card for card in image.cards if not _IMAGE_ONLY.match(card.keyword)])
    template = catalog_template()
    for key in _IMCORE_CARDS:
        header.append((key, template[key], template.comments[key]), end=True)
    header["SATURATE"] = round(saturation, 2)
    header["MJD_DAY"] = mjd_day
    return header


def tile_catalog_header(
    tile_image: fits.Header, primary: fits.Header, sky_level: float, sky_noise: float, saturation: float
) -> fits.Header:
    """Return the non-column cards of a tile catalogue.

    Parameters
    ----------
    tile_image : `astropy.io.fits.Header`
        Header of the tile image (CIR_CPM, provenance, NAXISn, SEEING,
        MAGZPT).
    primary : `astropy.io.fits.Header`
        Primary header of the tile.
    sky_level, sky_noise : `float`
        SKYLEVEL and SKYNOISE of the tile.
    saturation : `float`
        SATURATE (gain-normalised ADU).

    Returns
    -------
    header : `astropy.io.fits.Header`
        The real tile catalogue's cards with this tile's observation,
        provenance and photometry.
    """
    header = catalog_template()
    for key in header:
        if key not in ("", "COMMENT", "HISTORY", "EXTNAME") and key in primary:
            header[key] = primary[key]
    # The real tile catalogue names the confidence map of the tile with a
    # "tmp_" prefix; kept, as ingest meets it in real files.
    header["CIR_CPM"] = f"tmp_{tile_image['CIR_CPM']}"
    for key in [k for k in header if re.fullmatch(r"PROV\d{4}", k)]:
        del header[key]
    position = header.index("DRIBBLE") + 1
    for offset, key in enumerate(k for k in tile_image if re.fullmatch(r"PROV\d{4}", k)):
        header.insert(position + offset, (key, tile_image[key], tile_image.comments[key]))
    header["NXOUT"] = tile_image["NAXIS1"]
    header["NYOUT"] = tile_image["NAXIS2"]
    header["SKYLEVEL"] = round(sky_level, 2)
    header["SKYNOISE"] = round(sky_noise, 2)
    header["SEEING"] = tile_image["SEEING"]
    header["SATURATE"] = round(saturation, 2)
    header["MAGZPT"] = tile_image["MAGZPT"]
    header["NIGHTZPT"] = tile_image["NIGHTZPT"]
    header["ELLIPTIC"] = 0.0
    header["MJD_DAY"] = math.floor(primary["MJD-OBS"])
    return header
