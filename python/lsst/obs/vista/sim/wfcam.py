"""Synthetic CASU UKIRT/WFCAM stacks with their exact truth.

The pixels, confidence maps, catalogues and truth are those of
`write_pawprint_stack` for a configuration whose ``instrument`` is
``WFCAM`` (the WFCAM camera description: gains, read noise, saturation,
plate scale, focal-plane layout): jittered exposures resampled bilinearly
and averaged, as CASU combines its frames.  Only the headers differ: the
files are laid out as CASU's WFCAM products are, on the real WFCAM header
(``data/wfcam_headers/``), with one image HDU per camera found by its
CAMNUM card.  The stacks are not interleaved (NUSTEP = 1, 0.4 arcsec
pixels, as CASU's stacks of unmicrostepped UKIDSS data).
"""

from __future__ import annotations

__all__ = ("WFCAM_HEADER", "read_wfcam_headers", "write_wfcam_cutout", "write_wfcam_stack")

import math
import shutil
from pathlib import Path

from astropy.io import fits
from astropy.time import Time, TimeDelta

from .._resources import PACKAGE_DIR
from ..discovery import instrument_entry
from ._config import SimulationConfig
from ._files import scaled_image_hdu
from ._headers import SIMULATE_CARD
from ._pawprint import SimulatedStack, write_pawprint_stack
from ._truth import truth_path

WFCAM_HEADER = PACKAGE_DIR / "data" / "wfcam_headers" / "gcs_k_w20071011_01818_cam4_cutout.hdr.txt"
"""The real WFCAM header dump the synthetic files are written on."""

_STRUCTURE = frozenset(
    ("XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "BSCALE", "BZERO")
)
"""Cards of an image HDU that describe its data array."""

_CAMERA_CARDS = ("DETECTOR", "HDTFILE2", "DROWS", "DCOLUMNS", "READOUT", "CAPPLICN")
"""Cards of the real image header that describe the camera, kept as they are."""

_KEPT_FROM_SIMULATION = (
    "BSCALE",
    "BZERO",
    "CTYPE1",
    "CTYPE2",
    "CRPIX1",
    "CRPIX2",
    "CRVAL1",
    "CRVAL2",
    "CRUNIT1",
    "CRUNIT2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
    "GAINCOR",
    "SKYLEVEL",
    "SKYNOISE",
    "SEEING",
    "MAGZPT",
    "EXTINCT",
)
"""Cards of a simulated extension that carry over: WCS (with the PV terms),
photometry and noise.  GAINCOR is the simulation's pixel normalisation (real
WFCAM products have none, which the isr reads as 1)."""


def read_wfcam_headers(path: Path = WFCAM_HEADER) -> tuple[fits.Header, fits.Header]:
    """Read a WFCAM header dump: the primary and the image HDU's header.

    Parameters
    ----------
    path : `pathlib.Path`
        A dump whose HDUs start at lines ``# HDU <n> (<name>)``.

    Returns
    -------
    primary, image : `astropy.io.fits.Header`
        The two headers.
    """
    sections: list[list[str]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# HDU "):
            sections.append([])
        elif sections:
            sections[-1].append(line)
    primary, image = (fits.Header.fromstring("\n".join(lines), sep="\n") for lines in sections[:2])
    return primary, image


def _stem(start: Time, index: int) -> str:
    return f"w{start.utc.strftime('%Y%m%d')}_{index + 1:05d}_st"


def _hour_angle(airmass: float, dec: float, latitude: float) -> float:
    """Hour angle (deg, East of the meridian) at which a declination is
    seen at an airmass."""
    cos_zenith = 1.0 / airmass
    phi, delta = math.radians(latitude), math.radians(dec)
    cos_h = (cos_zenith - math.sin(phi) * math.sin(delta)) / (math.cos(phi) * math.cos(delta))
    return -math.degrees(math.acos(max(-1.0, min(1.0, cos_h))))


def _primary(simulated: fits.Header, config: SimulationConfig, index: int) -> fits.Header:
    from ..translators.wfcam import _UKIRT

    header, _ = read_wfcam_headers()
    start = Time(simulated["DATE-OBS"], scale="utc")
    duration = config.dit * config.ndit * config.n_exposures
    ra, dec = float(simulated["RA"]), float(simulated["DEC"])
    airmass_start = float(simulated["ESO TEL AIRM START"])
    for key in ("WSA_TIME", "WSA_MFID"):
        del header[key]
    header["OBJECT"] = "SIMULATED"
    header["PROJECT"] = "U/SIM/lsst.obs.vista"
    header["OBSNUM"] = header["GRPNUM"] = header["TILENUM"] = index + 1
    header["UTDATE"] = start.utc.strftime("%Y%m%d")
    header["DATE-OBS"] = start.utc.isot
    header["DATE-END"] = (start + TimeDelta(duration, format="sec")).utc.isot
    header["MJD-OBS"] = round(start.utc.mjd, 8)
    header["NJITTER"] = config.n_exposures
    header["NUSTEP"] = 1
    header["EXP_TIME"] = config.dit
    header["NEXP"] = config.ndit
    header["NINT"] = 1
    header["FILTER"] = config.filter_name
    header["AMSTART"] = airmass_start
    header["AMEND"] = float(simulated["ESO TEL AIRM END"])
    header["RABASE"] = header["TELRA"] = round(ra / 15.0, 7)
    header["DECBASE"] = header["TELDEC"] = round(dec, 7)
    header["HABASE"] = round(_hour_angle(airmass_start, dec, _UKIRT.lat.deg), 7)
    header.append(SIMULATE_CARD, end=True)
    return header


def _image_header(
    simulated: fits.Header, config: SimulationConfig, detector: int, stem: str, inputs: list[str]
) -> fits.Header:
    _, template = read_wfcam_headers()
    described = config.camera.detectors[detector]
    header = fits.Header()
    header["CAMNUM"] = (detector, template.comments["CAMNUM"])
    for key in _CAMERA_CARDS:
        header[key] = (template[key], template.comments[key])
    header["DETECTID"] = described.serial
    header["PIXLSIZE"] = (config.camera.plate_scale, "[arcsec] Pixel size")
    header["GAIN"] = (described.gain, "[electrons/ADU] Detector gain")
    header["READNOIS"] = (described.read_noise, "Readnoise estimate")
    for key in _KEPT_FROM_SIMULATION:
        if key in simulated:
            header[key] = (simulated[key], simulated.comments[key])
    for key in simulated:
        if key.startswith("PV2_"):
            header[key] = simulated[key]
    header["CIR_CPM"] = (f"{stem}_conf.fit[{detector}]", "Confidence Map")
    header["PROV0000"] = f"{stem}.fit[{detector}]: formed from imdither of:"
    for number, name in enumerate(inputs, start=1):
        header[f"PROV{number:04d}"] = f"{name}[{detector}]"
    return header


def _inputs(simulated: fits.Header) -> list[str]:
    return [
        str(value).split("[", 1)[0]
        for key, value in simulated.items()
        if key.startswith("PROV") and key != "PROV0000"
    ]


def write_wfcam_stack(outdir: str | Path, index: int, config: SimulationConfig) -> SimulatedStack:
    """Write one synthetic WFCAM stack (one image HDU per camera), its
    confidence map, catalogue and truth.

    Parameters
    ----------
    outdir : `str` or `pathlib.Path`
        Directory of the products; the truth goes to ``truth/``.
    index : `int`
        Stack index (0-based), as for `write_pawprint_stack`; OBSNUM is
        ``index + 1``.
    config : `SimulationConfig`
        The simulation; its ``instrument`` must be ``WFCAM`` and its
        ``filter_name`` a WFCAM FILTER (``Z`` ... ``K``).

    Returns
    -------
    stack : `SimulatedStack`
        The files written, named ``w<YYYYMMDD>_<OBSNUM>_st*.fit(s)``.
    """
    if config.instrument != instrument_entry("WFCAM").name:
        raise ValueError(f"write_wfcam_stack needs a WFCAM simulation, not {config.instrument!r}")
    outdir = Path(outdir)
    staging = outdir / f".staging_{index}"
    made = write_pawprint_stack(staging, index, config)
    with fits.open(made.stack) as hdus:
        simulated_primary = hdus[0].header.copy()
        start = Time(hdus[1].header["DATE-OBS"], scale="utc")
    stem = _stem(start, index)
    primary = _primary(simulated_primary, config, index)
    result = SimulatedStack(
        index=index,
        stem=stem,
        stack=outdir / f"{stem}.fit",
        confidence=outdir / f"{stem}_conf.fit",
        catalog=outdir / f"{stem}_cat.fits",
        truth=truth_path(outdir, stem),
    )
    inputs = _inputs(fits.getheader(made.stack, 1))
    for source, target in ((made.stack, result.stack), (made.confidence, result.confidence)):
        # The HDUs are kept, raw integers and scaling cards with them; only
        # their descriptive cards are replaced.
        with fits.open(source, do_not_scale_image_data=True) as hdus:
            for detector, hdu in zip(config.detectors, hdus[1:], strict=True):
                header = _image_header(hdu.header, config, detector, stem, inputs)
                for key in {key for key in hdu.header if key not in _STRUCTURE}:
                    hdu.header.remove(key, remove_all=True)
                for card in header.cards:
                    if card.keyword not in _STRUCTURE and not (
                        source == made.confidence and card.keyword.startswith("PROV")
                    ):
                        hdu.header.append(card)
            hdus[0] = fits.PrimaryHDU(header=primary)
            hdus[0].header["EXTEND"] = True
            hdus.writeto(target)
    with fits.open(made.catalog) as hdus:
        converted = fits.HDUList([fits.PrimaryHDU(header=primary)])
        for detector, hdu in zip(config.detectors, hdus[1:], strict=True):
            table = fits.BinTableHDU(data=hdu.data, header=hdu.header)
            del table.header["EXTNAME"]
            table.header["CAMNUM"] = detector
            converted.append(table)
        converted.writeto(result.catalog)
    result.truth.parent.mkdir(parents=True, exist_ok=True)
    made.truth.rename(result.truth)
    shutil.rmtree(staging)
    return result


def write_wfcam_cutout(stack: Path, detector: int, target: Path, *, size: int) -> Path:
    """Write a WFCAM Science Archive-style cutout of one camera of a stack:
    the primary header and one image HDU ``WSAIMAGE`` with CAMNUM and
    CASU's cards, the central ``size`` x ``size`` pixels.

    Parameters
    ----------
    stack : `pathlib.Path`
        A stack from `write_wfcam_stack`.
    detector : `int`
        CAMNUM of the camera cut out.
    target : `pathlib.Path`
        File to write.
    size : `int`
        Side of the cutout (pixels).

    Returns
    -------
    target : `pathlib.Path`
        The file written.
    """
    with fits.open(stack, do_not_scale_image_data=True) as hdus:
        (hdu,) = (h for h in hdus[1:] if h.header.get("CAMNUM") == detector)
        ny, nx = hdu.data.shape
        y0, x0 = (ny - size) // 2, (nx - size) // 2
        header = hdu.header.copy()
        header["EXTNAME"] = "WSAIMAGE"
        header["CRPIX1"] = header["CRPIX1"] - x0
        header["CRPIX2"] = header["CRPIX2"] - y0
        image = scaled_image_hdu(hdu.data[y0 : y0 + size, x0 : x0 + size].copy(), header)
        primary = hdus[0].header.copy()
        primary["WSA_MFID"] = (detector, "WSA Multiframe ID (synthetic)")
        fits.HDUList([fits.PrimaryHDU(header=primary), image]).writeto(target)
    return target
