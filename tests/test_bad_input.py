"""The bad-input table: one row per kind of bad input to ``butler ingest-casu``,
``butler ingest-instcal`` and ``butler ingest-wfcam``.

Each row builds a batch in a temporary directory (synthetic VIRCAM stacks of
64-pixel detectors from `lsst.obs.vista.sim`, the real DECam CP cutouts of
tests/data), damages it, runs the real command (in this process, through the
``butler`` command-line entry point, on a copy of a small SQLite repository)
and checks:

Rows whose bad input could make a broken ingest wait for ever (a FIFO, a
symbolic-link loop) run the command in a subprocess with a time limit
instead, so that such a regression fails rather than hangs.

- the exit status;
- the exact line logged for every file that failed or was warned about, and
  that no traceback was logged;
- that the repository changed by exactly the datasets the row expects (none
  for most rows): registry rows and datastore files, with no file in the
  datastore that no dataset refers to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.wcs import FITSFixedWarning
from lsst.daf.butler import Butler, CollectionType
from lsst.daf.butler.cli.butler import cli
from lsst.daf.butler.cli.utils import LogCliRunner

from file_modes import without_root_override
from lsst.obs.vista.sim import SimulatedStack, SimulationConfig, write_pawprint_stack
from lsst.obs.vista.sim.wfcam import write_wfcam_stack

DECAM_DATA = Path(__file__).parent / "data" / "decam_cp"
DECAM_TRIO = DECAM_DATA / "testcase4" / "c4d_170316_062107_ooi_z_ls9.N2.fits"
DECAM_FZ_TRIO = DECAM_DATA / "fz_testcase8" / "c4d_130105_065255_ooi_r_a1-N15.fits.fz"
CONFIG = SimulationConfig(size=64, detectors=(1, 2), seed=29, jitter=2.0)
WFCAM_CONFIG = SimulationConfig(
    instrument="WFCAM", size=64, detectors=(1, 2), seed=29, jitter=2.0, filter_name="J"
)
ELEMENTS = ("day_obs", "group", "exposure", "visit", "visit_definition", "visit_detector_region")
VIRCAM_FILTERS = "Z, Y, J, H, Ks, NB118, NB980, NB990"
LOOKED_FOR = "{stem}_conf.fit, {stem}_conf.fits, {stem}_conf.fit.fz, {stem}_conf.fits.fz"


@dataclasses.dataclass
class Expected:
    """What a row expects of the ingest."""

    failed: dict[Path, str] = dataclasses.field(default_factory=dict)
    """Cause logged (ERROR) for each file that is not ingested."""

    warned: dict[Path, str] = dataclasses.field(default_factory=dict)
    """Warning logged for each file that is ingested with a warning."""

    added: dict[str, int] = dataclasses.field(default_factory=dict)
    """Datasets added, counted by dataset type."""

    status: int = 1

    other_warnings: set[str] = dataclasses.field(default_factory=set)
    """Warnings about no file in particular."""

    summary: str | None = None
    """The closing line of the ingest, without its duration, if the row
    checks it."""


@dataclasses.dataclass
class Inputs:
    """Pristine inputs rows copy from."""

    stacks: dict[int, SimulatedStack]

    wfcam: dict[int, SimulatedStack]
    """Synthetic WFCAM stacks of two cameras (`lsst.obs.vista.sim.wfcam`)."""


Row = Callable[[Path, Inputs], tuple[list[Path], Expected]]
ROWS: dict[str, tuple[str, Row, bool]] = {}


def row(name: str, instrument: str = "VIRCAM", *, could_hang: bool = False) -> Callable[[Row], Row]:
    """Register a row; ``could_hang`` runs its command in a subprocess with
    a time limit."""

    def register(function: Row) -> Row:
        ROWS[name] = (instrument, function, could_hang)
        return function

    return register


# ---------------------------------------------------------------- helpers


def stage_stack(
    batch: Path, stack: SimulatedStack, kinds=("stack", "confidence", "catalog")
) -> dict[str, Path]:
    """Copy a stack's files into the batch; return the copies by kind."""
    batch.mkdir(parents=True, exist_ok=True)
    return {
        kind: Path(shutil.copy(getattr(stack, kind), batch / getattr(stack, kind).name)) for kind in kinds
    }


def stage_trio(batch: Path, image: Path = DECAM_TRIO, roles=("ooi", "oow", "ood")) -> dict[str, Path]:
    batch.mkdir(parents=True, exist_ok=True)
    members = {}
    for role in roles:
        member = image.with_name(image.name.replace("_ooi_", f"_{role}_"))
        members[role] = Path(shutil.copy(member, batch / member.name))
    return members


def set_cards(path: Path, hdus: list[int] | None, **cards) -> None:
    """Set (value) or delete (`None`) cards in some HDUs (all by default);
    keyword arguments use ``_`` for blanks and ``__`` for ``-``."""
    with fits.open(path, mode="update") as hdu_list:
        for index in range(len(hdu_list)) if hdus is None else hdus:
            header = hdu_list[index].header
            for name, value in cards.items():
                keyword = name.replace("__", "-").replace("_", " ")
                if value is None:
                    header.remove(keyword, ignore_missing=True)
                else:
                    header[("HIERARCH " if len(keyword) > 8 or " " in keyword else "") + keyword] = value


def write_raw_card(path: Path, index: int, keyword: str, value: str) -> None:
    """Overwrite a card's value in place with text astropy would not write
    (``NaN``)."""
    with fits.open(path) as hdus:
        start, end = hdus.fileinfo(index)["hdrLoc"], hdus.fileinfo(index)["datLoc"]
    data = bytearray(path.read_bytes())
    position = next(p for p in range(start, end, 80) if data[p : p + 8] == keyword.ljust(8).encode("ascii"))
    data[position : position + 80] = f"{keyword:<8}= {value:>20}".ljust(80).encode("ascii")
    path.write_bytes(bytes(data))


def failed_with_companions(
    files: dict[str, Path],
    cause: str,
    main: str = "stack",
    product="casu_stack",
    companions_skipped: bool = False,
):
    failed = {files[main]: cause}
    if companions_skipped:
        # Companions identical to what is stored are skipped, not failed.
        return failed
    failed.update(
        {
            path: f"not ingested: the {product} it belongs to failed"
            for kind, path in files.items()
            if kind != main
        }
    )
    return failed


def truncate_in_hdu(path: Path, index: int, keep: int = 100) -> str:
    """Cut a file ``keep`` bytes into the data of HDU ``index``; return the
    scanner's message, computed from the header."""
    with fits.open(path, disable_image_compression=True) as hdus:
        start = hdus.fileinfo(index)["datLoc"]
        header = hdus[index].header
    assert header["NAXIS2"] > 0, "a truncation inside the data"
    size = abs(header["BITPIX"]) // 8 * header["NAXIS1"] * header["NAXIS2"] + header.get("PCOUNT", 0)
    with open(path, "r+b") as stream:
        stream.truncate(start + keep)
    return f"truncated: HDU {index} needs {start + size} bytes, the file has {start + keep}"


CD_MATRIX = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
VIRCAM_ALL = {"casu_stack": 2, "casu_confidence": 2, "casu_catalog": 2}
VIRCAM_NO_CONF = {"casu_stack": 2, "casu_catalog": 2}
DECAM_ALL = {"cp_image": 1, "cp_weight": 1, "cp_mask": 1}


# ------------------------------------------------------- file structure


@row("zero-length stack")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    files["stack"].write_bytes(b"")
    return [batch], Expected(failed_with_companions(files, "empty file"))


@row("not FITS")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    files["stack"].write_text("this is a text file with a FITS name\n" * 80)
    return [batch], Expected(failed_with_companions(files, "not a FITS file (does not start with SIMPLE)"))


@row("truncated stack")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    return [batch], Expected(failed_with_companions(files, truncate_in_hdu(files["stack"], 2)))


@row("truncated confidence map")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    cause = truncate_in_hdu(files["confidence"], 1)
    return [batch], Expected({files["confidence"]: cause}, added=VIRCAM_NO_CONF)


@row("truncated catalogue")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    cause = truncate_in_hdu(files["catalog"], 2, keep=1)
    return [batch], Expected({files["catalog"]: cause}, added={"casu_stack": 2, "casu_confidence": 2})


@row("truncated .fz image", "DECam")
def _(batch, inputs):
    files = stage_trio(batch, DECAM_FZ_TRIO)
    return [batch], Expected(
        failed_with_companions(files, truncate_in_hdu(files["ooi"], 1), "ooi", "cp_image")
    )


@row("stack without extensions")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    fits.PrimaryHDU(header=fits.getheader(files["stack"], 0)).writeto(files["stack"], overwrite=True)
    cause = "missing extensions: no image HDU named DET1.CHIP{detector}"
    return [batch], Expected(failed_with_companions(files, cause))


@row("confidence map missing an extension")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    with fits.open(files["confidence"]) as hdus:
        fits.HDUList([hdu.copy() for hdu in hdus[:2]]).writeto(files["confidence"], overwrite=True)
    cause = f"missing extensions: DET1.CHIP2 (present in {files['stack'].name})"
    return [batch], Expected({files["confidence"]: cause}, added=VIRCAM_NO_CONF)


@row("confidence map of another shape")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    with fits.open(files["confidence"]) as hdus:
        kept = fits.HDUList([hdu.copy() for hdu in hdus])
    ny, nx = kept[2].data.shape
    kept[2] = fits.ImageHDU(data=kept[2].data[:-4], header=kept[2].header)
    kept.writeto(files["confidence"], overwrite=True)
    cause = f"DET1.CHIP2 is {nx}x{ny - 4} pixels but {files['stack'].name} is {nx}x{ny}"
    return [batch], Expected({files["confidence"]: cause}, added=VIRCAM_NO_CONF)


@row("weight of another shape", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    with fits.open(files["oow"]) as hdus:
        kept = fits.HDUList([hdu.copy() for hdu in hdus])
    kept[1] = fits.ImageHDU(data=kept[1].data[:, :-5], header=kept[1].header)
    kept.writeto(files["oow"], overwrite=True)
    cause = f"N2 is 240x251 pixels but {files['ooi'].name} is 245x251"
    return [batch], Expected({files["oow"]: cause}, added={"cp_image": 1, "cp_mask": 1})


@row("wrong instrument")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [0], INSTRUME="DECam")
    return [batch], Expected(failed_with_companions(files, "wrong instrument: 'DECam', not VIRCAM"))


# ----------------------------------------------------------- companions


@row("confidence map without its stack")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1], kinds=("confidence",))
    stem = inputs.stacks[1].stem
    cause = f"not ingested: no casu_stack in this batch to pair it with (looked for {stem}.fit and variants)"
    return [batch], Expected({files["confidence"]: cause})


@row("CIR_CPM naming a missing file")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1], kinds=("stack", "catalog"))
    stem = inputs.stacks[1].stem
    set_cards(files["stack"], [1, 2], CIR__CPM=None)
    for index in (1, 2):
        with fits.open(files["stack"], mode="update") as hdus:
            hdus[index].header["CIR_CPM"] = f"lost_st_conf.fit[{index}]"
    warning = (
        f"no casu_confidence (CIR_CPM = 'lost_st_conf.fit[1]' names no file; "
        f"looked for lost_st_conf.fit, {LOOKED_FOR.format(stem=stem)}); ingested without it"
    )
    return [batch], Expected(warned={files["stack"]: warning}, added=VIRCAM_NO_CONF, status=0)


@row("CIR_CPM naming another stack's map, own map present")
def _(batch, inputs):
    ours = stage_stack(batch, inputs.stacks[1])
    theirs = stage_stack(batch, inputs.stacks[2])
    for index in (1, 2):
        with fits.open(ours["stack"], mode="update") as hdus:
            hdus[index].header["CIR_CPM"] = f"{theirs['confidence'].name}[{index}]"
    warning = (
        f"CIR_CPM = '{theirs['confidence'].name}[1]' names the casu_confidence of {theirs['stack'].name}; "
        f"ingested with {ours['confidence'].name}"
    )
    added = {name: 2 * count for name, count in VIRCAM_ALL.items()}
    return [batch], Expected(warned={ours["stack"]: warning}, added=added, status=0)


@row("CIR_CPM naming another stack's map, own map absent")
def _(batch, inputs):
    ours = stage_stack(batch, inputs.stacks[1], kinds=("stack", "catalog"))
    theirs = stage_stack(batch, inputs.stacks[2])
    for index in (1, 2):
        with fits.open(ours["stack"], mode="update") as hdus:
            hdus[index].header["CIR_CPM"] = f"{theirs['confidence'].name}[{index}]"
    looked_for = f"{theirs['confidence'].name}, {LOOKED_FOR.format(stem=inputs.stacks[1].stem)}"
    warning = (
        f"no casu_confidence (CIR_CPM = '{theirs['confidence'].name}[1]' names the casu_confidence of "
        f"{theirs['stack'].name}; looked for {looked_for}); ingested without it"
    )
    added = {"casu_stack": 4, "casu_catalog": 4, "casu_confidence": 2}
    return [batch], Expected(warned={ours["stack"]: warning}, added=added, status=0)


@row("duplicate exposure in one batch")
def _(batch, inputs):
    first = stage_stack(batch / "a", inputs.stacks[1])
    second = stage_stack(batch / "b", inputs.stacks[1])
    exposure = exposure_of(inputs.stacks[1])
    cause = f"exposure {exposure} is already defined by {first['stack']} in this batch"
    return [batch], Expected(failed_with_companions(second, cause), added=VIRCAM_ALL)


@row("earlier batch, same file again")
def _(batch, inputs):
    # The template holds stack 0: offering it again is a no-op, not an error.
    stage_stack(batch, inputs.stacks[0])
    return [batch], Expected(status=0)


@row("earlier batch, same size, different content")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[0])
    with fits.open(files["stack"]) as hdus:
        data_start = hdus.fileinfo(1)["datLoc"]
    with open(files["stack"], "r+b") as stream:  # a reprocessing: same size, other pixels
        stream.seek(data_start + 4000)
        stream.write(b"\x00\x00\x01\x07")
    exposure = exposure_of(inputs.stacks[0])
    cause = (
        f"casu_stack of exposure {exposure} was ingested from <stored casu_stack>, whose content differs "
        "(same size, different blake2b checksum); --replace replaces what was ingested"
    )
    return [batch], Expected(failed_with_companions(files, cause, companions_skipped=True))


@row("earlier batch, another file for the same data IDs")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[0])
    with fits.open(files["stack"], mode="append") as hdus:
        hdus.append(fits.ImageHDU(name="EXTRA"))
    exposure = exposure_of(inputs.stacks[0])
    stored = inputs.stacks[0].stack.stat().st_size
    cause = (
        f"casu_stack of exposure {exposure} was ingested from <stored casu_stack>, whose content differs "
        f"({stored} bytes, this file {files['stack'].stat().st_size}); --replace replaces what was ingested"
    )
    return [batch], Expected(failed_with_companions(files, cause, companions_skipped=True))


@row("missing mask", "DECam")
def _(batch, inputs):
    files = stage_trio(batch, roles=("ooi", "oow"))
    mask = DECAM_TRIO.name.replace("_ooi_", "_ood_")
    looked_for = ", ".join(
        mask.replace(".fits", suffix) for suffix in (".fits", ".fits.fz", ".fit", ".fit.fz")
    )
    warning = f"no cp_mask (looked for {looked_for}); ingested without it"
    return [batch], Expected(warned={files["ooi"]: warning}, added={"cp_image": 1, "cp_weight": 1}, status=0)


@row("weight of another exposure", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["oow"], [0], EXPNUM=1)
    cause = f"EXPNUM = 1 but {files['ooi'].name} has EXPNUM = 630780: not the same exposure"
    return [batch], Expected({files["oow"]: cause}, added={"cp_image": 1, "cp_mask": 1})


# ----------------------------------------------------------------- cards


@row("negative EXPTIME")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], None, EXPTIME=-50.0)
    return [batch], Expected(
        failed_with_companions(files, "extension DET1.CHIP1 has EXPTIME = -50.0, not > 0")
    )


@row("zero EXPTIME")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], None, EXPTIME=0.0)
    return [batch], Expected(failed_with_companions(files, "extension DET1.CHIP1 has EXPTIME = 0.0, not > 0"))


@row("DECam negative EXPTIME", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["ooi"], [0], EXPTIME=-107.0)
    cause = "primary HDU has EXPTIME = -107.0, not > 0"
    return [batch], Expected(failed_with_companions(files, cause, "ooi", "cp_image"))


@row("SKYNOISE <= 0")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [2], SKYNOISE=-1.0)
    return [batch], Expected(
        failed_with_companions(files, "extension DET1.CHIP2 has SKYNOISE = -1.0, not > 0")
    )


@row("non-numeric MAGZPT")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [1], MAGZPT="23.7 (bad)")
    cause = "extension DET1.CHIP1 has MAGZPT = '23.7 (bad)', not a finite number"
    return [batch], Expected(failed_with_companions(files, cause))


@row("non-numeric MAGZERO", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["ooi"], [0], MAGZERO="none")
    cause = "primary HDU has MAGZERO = 'none', not a finite number"
    return [batch], Expected(failed_with_companions(files, cause, "ooi", "cp_image"))


@row("garbage DATE-OBS")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], None, DATE__OBS="yesterday")
    cause = "extension DET1.CHIP1 has DATE-OBS = 'yesterday', not an ISO date and time (YYYY-MM-DDThh:mm:ss)"
    return [batch], Expected(failed_with_companions(files, cause))


@row("DECam DATE-OBS out of range", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["ooi"], [0], DATE__OBS="2017-13-16T06:21:07")
    cause = "primary HDU has DATE-OBS = '2017-13-16T06:21:07', not an ISO date and time (YYYY-MM-DDThh:mm:ss)"
    return [batch], Expected(failed_with_companions(files, cause, "ooi", "cp_image"))


@row("garbage CRVAL1 (the region would be wrong)")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [2], CRVAL1="12h30m")
    cause = "extension DET1.CHIP2 has CRVAL1 = '12h30m', not a finite number"
    return [batch], Expected(failed_with_companions(files, cause))


@row("CRVAL2 = 95 (a declination beyond the pole)")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [2], CRVAL2=95.0)
    cause = "extension DET1.CHIP2 has CRVAL2 = 95.0, not a latitude in [-90, 90] (CTYPE2 = 'DEC--ZPN')"
    return [batch], Expected(failed_with_companions(files, cause))


@row("DECam CRVAL2 = -95", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["ooi"], [1], CRVAL2=-95.0)
    cause = "extension N2 has CRVAL2 = -95.0, not a latitude in [-90, 90] (CTYPE2 = 'DEC--TPV')"
    return [batch], Expected(failed_with_companions(files, cause, "ooi", "cp_image"))


@row("all-zero CD matrix")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    with fits.open(files["stack"], mode="update") as hdus:
        hdus[1].header.update({name: 0.0 for name in CD_MATRIX})
    cause = (
        "extension DET1.CHIP1 has CD1_1 = 0.0, CD1_2 = 0.0, CD2_1 = 0.0, CD2_2 = 0.0: "
        "a singular CD matrix, which maps the pixels to no area of sky"
    )
    return [batch], Expected(failed_with_companions(files, cause))


@row("zero CDELT1 (PC x CDELT, no CD matrix)")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    with fits.open(files["stack"], mode="update") as hdus:
        for name in CD_MATRIX:
            del hdus[2].header[name]
        hdus[2].header.update(CDELT1=0.0, CDELT2=1e-4)
    cause = (
        "extension DET1.CHIP2 has CDELT1 = 0.0, CDELT2 = 0.0001: "
        "a singular PC x CDELT matrix, which maps the pixels to no area of sky"
    )
    return [batch], Expected(failed_with_companions(files, cause))


@row("NaN in a WCS card the policy does not list")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    write_raw_card(files["stack"], 2, "PV2_3", "NaN")
    cause = "extension DET1.CHIP2 has PV2_3 = nan, not a finite number"
    return [batch], Expected(failed_with_companions(files, cause))


@row("missing CHIP NO")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [2], ESO_DET_CHIP_NO=None)
    return [batch], Expected(
        failed_with_companions(files, "extension DET1.CHIP2 has no ESO DET CHIP NO card")
    )


@row("mismatched CHIP NO")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [1], ESO_DET_CHIP_NO=5)
    return [batch], Expected(
        failed_with_companions(files, "extension DET1.CHIP1 has ESO DET CHIP NO = 5, not 1")
    )


@row("out-of-range CHIP NO")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [2], ESO_DET_CHIP_NO=99, EXTNAME="DET1.CHIP99")
    cause = (
        "extension DET1.CHIP99 is detector 99, which the camera description does not have (detectors 1-16)"
    )
    return [batch], Expected(failed_with_companions(files, cause))


@row("mismatched CCDNUM", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["ooi"], [1], CCDNUM=1)
    return [batch], Expected(
        failed_with_companions(files, "extension N2 has CCDNUM = 1, not 33", "ooi", "cp_image")
    )


@row("missing CCDNUM", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["oow"], [1], CCDNUM=None)
    return [batch], Expected(
        {files["oow"]: "extension N2 has no CCDNUM card"}, added={"cp_image": 1, "cp_mask": 1}
    )


@row("unknown filter")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    set_cards(files["stack"], [0], ESO_INS_FILT1_NAME="Q")
    cause = f"primary HDU has ESO INS FILT1 NAME = 'Q', not a filter of the camera ({VIRCAM_FILTERS})"
    return [batch], Expected(failed_with_companions(files, cause))


@row("unknown DECam filter", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["ooi"], [0], FILTER="w DECam c0009 6000.0 3000.0")
    cause = "primary HDU has FILTER = 'w DECam c0009 6000.0 3000.0', not a filter of the camera ("
    cause += ", ".join(f["header_name"] for f in _decam_filters()) + ")"
    return [batch], Expected(failed_with_companions(files, cause, "ooi", "cp_image"))


# ------------------------------------------------------------------ WFCAM


def set_wfcam_card(path: Path, index: int, keyword: str, value) -> None:
    """Set (value) or delete (`None`) one card of one HDU of a WFCAM file
    (whose keywords hold underscores, which `set_cards` reads as blanks)."""
    with fits.open(path, mode="update") as hdus:
        if value is None:
            hdus[index].header.remove(keyword, ignore_missing=True)
        else:
            hdus[index].header[keyword] = value


WFCAM_FILTERS = "Z, Y, J, H, K, H2, Br"


@row("WFCAM: two extensions with one CAMNUM", "WFCAM")
def _(batch, inputs):
    files = stage_stack(batch, inputs.wfcam[1])
    set_wfcam_card(files["stack"], 2, "CAMNUM", 1)
    return [batch], Expected(failed_with_companions(files, "HDU 2 repeats CAMNUM = 1 of HDU 1"))


@row("WFCAM: CAMNUM of no WFCAM camera", "WFCAM")
def _(batch, inputs):
    files = stage_stack(batch, inputs.wfcam[1])
    set_wfcam_card(files["stack"], 1, "CAMNUM", 7)
    cause = "HDU 1 has CAMNUM = 7, a detector the camera description does not have (detectors 1-4)"
    return [batch], Expected(failed_with_companions(files, cause))


@row("WFCAM: CAMNUM not a number", "WFCAM")
def _(batch, inputs):
    files = stage_stack(batch, inputs.wfcam[1])
    set_wfcam_card(files["stack"], 1, "CAMNUM", "one")
    return [batch], Expected(failed_with_companions(files, "HDU 1 has CAMNUM = 'one', not a detector number"))


@row("WFCAM: no CAMNUM card", "WFCAM")
def _(batch, inputs):
    files = stage_stack(batch, inputs.wfcam[1])
    for index in (1, 2):
        set_wfcam_card(files["stack"], index, "CAMNUM", None)
    cause = "missing extensions: no image HDU with a CAMNUM card"
    return [batch], Expected(failed_with_companions(files, cause))


@row("WFCAM: unknown filter", "WFCAM")
def _(batch, inputs):
    files = stage_stack(batch, inputs.wfcam[1])
    set_wfcam_card(files["stack"], 0, "FILTER", "Ks")
    cause = f"primary HDU has FILTER = 'Ks', not a filter of the camera ({WFCAM_FILTERS})"
    return [batch], Expected(failed_with_companions(files, cause))


@row("WFCAM: negative EXP_TIME", "WFCAM")
def _(batch, inputs):
    files = stage_stack(batch, inputs.wfcam[1])
    set_wfcam_card(files["stack"], 0, "EXP_TIME", -10.0)
    return [batch], Expected(failed_with_companions(files, "primary HDU has EXP_TIME = -10.0, not > 0"))


@row("WFCAM: truncated stack", "WFCAM")
def _(batch, inputs):
    files = stage_stack(batch, inputs.wfcam[1])
    cause = truncate_in_hdu(files["stack"], 2)
    return [batch], Expected(failed_with_companions(files, cause))


@row("WFCAM: a VIRCAM stack given to ingest-wfcam", "WFCAM")
def _(batch, inputs):
    from lsst.obs.vista.ingest import policy_for_instrument

    files = stage_stack(batch, inputs.stacks[1], kinds=("stack",))
    patterns = [p for product in policy_for_instrument("WFCAM").products.values() for p in product.patterns]
    return [files["stack"]], Expected({files["stack"]: f"file name matches none of {', '.join(patterns)}"})


def _decam_filters() -> list[dict]:
    import yaml

    return yaml.safe_load((Path(__file__).parents[1] / "policy" / "decam" / "camera.yaml").read_text())[
        "filters"
    ]


@row("all-zero confidence map (pixels are not read at ingest)")
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1])
    with fits.open(files["confidence"], mode="update") as hdus:
        for hdu in hdus[1:]:
            hdu.data[...] = 0
    return [batch], Expected(added=VIRCAM_ALL, status=0)


@row("all-NaN image (pixels are not read at ingest)", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    with fits.open(files["ooi"], mode="update") as hdus:
        hdus[1].data[...] = float("nan")
    return [batch], Expected(added=DECAM_ALL, status=0)


@row("garbage PLVER", "DECam")
def _(batch, inputs):
    files = stage_trio(batch)
    set_cards(files["ood"], [0], PLVER="unknown")
    cause = "primary HDU has PLVER = 'unknown': Unrecognised Community Pipeline version (PLVER) 'unknown'"
    return [batch], Expected({files["ood"]: cause}, added={"cp_image": 1, "cp_weight": 1})


# ----------------------------------------------------------------- paths


@row("empty directory")
def _(batch, inputs):
    batch.mkdir()
    return [batch], Expected({batch: "no VIRCAM product files (searched recursively)"})


@row("non-existent path")
def _(batch, inputs):
    missing = batch / "nowhere"
    return [missing], Expected({missing: "no such file or directory"})


@row("odd file names (spaces, unicode)")
def _(batch, inputs):
    directory = batch / "données de nuit" / "run 2"
    directory.mkdir(parents=True)
    for kind, suffix in (("stack", "_st.fit"), ("confidence", "_st_conf.fit"), ("catalog", "_st_cat.fits")):
        shutil.copy(getattr(inputs.stacks[1], kind), directory / f"ciel étoilé n°1{suffix}")
    return [batch], Expected(added=VIRCAM_ALL, status=0)


# ------------------------------------------------ what is not a regular file

SKIPPED = "not a regular file; skipped unopened"


def ingested(files: int, datasets: int, exposures: int = 1) -> str:
    return (
        f"Ingested {files} files ({datasets} datasets of {exposures} exposure{'s' if exposures > 1 else ''})"
    )


@row("FIFO named like the stack's confidence map", could_hang=True)
def _(batch, inputs):
    files = stage_stack(batch, inputs.stacks[1], kinds=("stack", "catalog"))
    fifo = batch / inputs.stacks[1].confidence.name
    os.mkfifo(fifo)
    stem = inputs.stacks[1].stem
    missing = (
        f"no casu_confidence (CIR_CPM = '{fifo.name}[1]' names no file; "
        f"looked for {LOOKED_FOR.format(stem=stem)}); ingested without it"
    )
    return [batch], Expected(
        warned={fifo: f"a FIFO (named pipe), {SKIPPED}", files["stack"]: missing},
        added=VIRCAM_NO_CONF,
        status=0,
        summary=f"{ingested(2, 4)}; skipped 1 path: 1 FIFO",
    )


@row("FIFO named like a mask", "DECam", could_hang=True)
def _(batch, inputs):
    files = stage_trio(batch, roles=("ooi", "oow"))
    fifo = batch / DECAM_TRIO.name.replace("_ooi_", "_ood_")
    os.mkfifo(fifo)
    looked_for = ", ".join(
        fifo.name.replace(".fits", suffix) for suffix in (".fits", ".fits.fz", ".fit", ".fit.fz")
    )
    return [batch], Expected(
        warned={
            fifo: f"a FIFO (named pipe), {SKIPPED}",
            files["ooi"]: f"no cp_mask (looked for {looked_for}); ingested without it",
        },
        added={"cp_image": 1, "cp_weight": 1},
        status=0,
        summary=f"{ingested(2, 2)}; skipped 1 path: 1 FIFO",
    )


@row("FIFO given explicitly", could_hang=True)
def _(batch, inputs):
    batch.mkdir()
    fifo = batch / "v20991231_00001_st.fit"
    os.mkfifo(fifo)
    cause = "a FIFO (named pipe), not a regular file or directory; not opened"
    return [fifo], Expected({fifo: cause}, summary="1 file failed")


@row("socket and character device named like stacks")
def _(batch, inputs):
    stage_stack(batch, inputs.stacks[1])
    sock = batch / "v20991231_00001_st.fit"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(sock))
    device = batch / "v20991231_00002_st.fit"
    device.symlink_to(os.devnull)
    return [batch], Expected(
        warned={
            sock: f"a socket, {SKIPPED}",
            device: f"a symbolic link to a character device ({os.devnull}), {SKIPPED}",
        },
        added=VIRCAM_ALL,
        status=0,
        summary=f"{ingested(3, 6)}; skipped 2 paths: 1 character device, 1 socket",
    )


@row("symlinked subfolder")
def _(batch, inputs):
    elsewhere = batch.parent / "elsewhere"
    stage_stack(elsewhere / "night1", inputs.stacks[1])
    stage_stack(batch / "night2", inputs.stacks[2])
    (batch / "night1").symlink_to(elsewhere / "night1")
    added = {name: 2 * count for name, count in VIRCAM_ALL.items()}
    return [batch], Expected(added=added, status=0, summary=ingested(6, 12, 2))


@row("symlinked files and a folder reached twice")
def _(batch, inputs):
    batch.mkdir()
    for kind in ("stack", "confidence", "catalog"):
        (batch / getattr(inputs.stacks[1], kind).name).symlink_to(getattr(inputs.stacks[1], kind))
    alias = batch.parent / "alias"
    alias.symlink_to(batch)
    return [alias, batch], Expected(added=VIRCAM_ALL, status=0, summary=ingested(3, 6))


@row("FIFO named like a stack, and symlink loops", could_hang=True)
def _(batch, inputs):
    stage_stack(batch / "night", inputs.stacks[1])
    fifo = batch / "night" / "v20991231_00003_st.fit"
    os.mkfifo(fifo)
    loop = batch / "night" / "up"
    loop.symlink_to(batch)
    circular = batch / "v20991231_00001_st.fit"
    circular.symlink_to(circular.name)
    broken = batch / "v20991231_00002_st.fit"
    broken.symlink_to(batch / "gone_st.fit")
    return [batch], Expected(
        warned={
            fifo: f"a FIFO (named pipe), {SKIPPED}",
            loop: f"symlink loop: leads back to {batch}; not followed again",
            circular: "symlink loop: the link never reaches a file or directory",
            broken: f"broken symlink to {batch / 'gone_st.fit'}",
        },
        added=VIRCAM_ALL,
        status=0,
        summary=f"{ingested(3, 6)}; skipped 4 paths: 1 FIFO, 1 broken symlink, 2 symlink loops",
    )


def exposure_of(stack: SimulatedStack) -> int:
    from astro_metadata_translator import ObservationInfo

    from lsst.obs.vista.translators import VircamTranslator

    with fits.open(stack.stack) as hdus:
        header = hdus[0].header.copy()
        header.update(hdus[1].header)
    return ObservationInfo(header, filename=str(stack.stack), translator_class=VircamTranslator).exposure_id


# ------------------------------------------------------------ the table


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    outdir = tmp_path_factory.mktemp("vircam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return Inputs(
            stacks={index: write_pawprint_stack(outdir, index, CONFIG) for index in range(3)},
            wfcam={index: write_wfcam_stack(outdir / "wfcam", index, WFCAM_CONFIG) for index in range(2)},
        )


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory, inputs: Inputs) -> dict[str, Path]:
    """Per instrument, a repository holding one exposure ingested with
    copies (so that the datastore has files of its own to keep intact)."""
    roots = {}
    for instrument, batch in (
        ("VIRCAM", stage_stack(tmp_path_factory.mktemp("v0"), inputs.stacks[0])["stack"].parent),
        ("DECam", stage_trio(tmp_path_factory.mktemp("d0"), DECAM_FZ_TRIO)["ooi"].parent),
        ("WFCAM", stage_stack(tmp_path_factory.mktemp("w0"), inputs.wfcam[0])["stack"].parent),
    ):
        root = tmp_path_factory.mktemp(f"template_{instrument}") / "repo"
        Butler.makeRepo(str(root))
        status, records = run_command(instrument, root, [batch])
        assert status == 0, [r.getMessage() for r in records]
        roots[instrument] = root
    return roots


COMMANDS = {"VIRCAM": "ingest-casu", "DECam": "ingest-instcal", "WFCAM": "ingest-wfcam"}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def run_command(instrument: str, root: Path, paths: list[Path]) -> tuple[int, list[logging.LogRecord]]:
    """Run ``butler ingest-casu|ingest-instcal ROOT PATH... --transfer copy``
    through the command-line entry point; return its exit status and the
    log records (INFO and above)."""
    handler = _Records()
    logging.getLogger().addHandler(handler)
    try:
        args = [COMMANDS[instrument], str(root), *map(str, paths), "--transfer", "copy"]
        result = LogCliRunner().invoke(cli, args)
    finally:
        logging.getLogger().removeHandler(handler)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, [r for r in handler.records if r.levelno >= logging.INFO]


HANG_LIMIT = 120.0
"""Seconds a subprocess row may take (a few normally) before it counts as
hung."""

_LOG_LINE = re.compile(r"(?P<name>\S+) (?P<level>INFO|WARNING|ERROR|CRITICAL): (?P<message>.*)")


def run_isolated(instrument: str, root: Path, paths: list[Path]) -> tuple[int, list[logging.LogRecord]]:
    """Run the command of `run_command` in a subprocess that is killed (and
    the row failed) if it takes longer than `HANG_LIMIT`; return its exit
    status and its log lines as records.  A line of stderr that is not a
    log line (a traceback) is returned as a record with ``exc_info`` set."""
    args = [COMMANDS[instrument], str(root), *map(str, paths), "--transfer", "copy"]
    result = subprocess.run(
        [str(BUTLER), *args], capture_output=True, text=True, timeout=HANG_LIMIT, stdin=subprocess.DEVNULL
    )
    return result.returncode, log_records(result.stderr)


def log_records(stderr: str) -> list[logging.LogRecord]:
    """The log lines a command-line run printed, as records."""
    records = []
    for line in stderr.splitlines():
        match = _LOG_LINE.fullmatch(line)
        if match is None:
            records.append(logging.makeLogRecord({"msg": line, "levelno": logging.ERROR, "exc_info": True}))
        else:
            level = logging.getLevelName(match["level"])
            records.append(
                logging.makeLogRecord({"name": match["name"], "msg": match["message"], "levelno": level})
            )
    return records


def snapshot(root: Path) -> tuple[dict[str, set], dict[str, str], set[str]]:
    """Registry rows (data IDs of the ingest's dimension records and every
    dataset), checksums of every file of the repository but the registry
    database, and the files the datastore refers to."""
    with Butler.from_config(str(root)) as butler:
        registry = butler.registry
        rows = {element: {r.dataId for r in registry.queryDimensionRecords(element)} for element in ELEMENTS}
        runs = list(registry.queryCollections(collectionTypes={CollectionType.RUN}))
        refs = [
            ref
            for dataset_type in registry.queryDatasetTypes()
            for ref in (registry.queryDatasets(dataset_type, collections=runs) if runs else [])
        ]
        rows["datasets"] = {(ref.datasetType.name, ref.run, ref.dataId) for ref in refs}
        referenced = {os.path.relpath(butler.getURI(ref).ospath, root) for ref in refs}
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            relative = str(path.relative_to(root))
            if not relative.startswith("gen3.sqlite3"):
                files[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return rows, files, referenced


def stored_paths(root: Path, cause: str) -> str:
    """Put the datastore file of each ``<stored DATASET_TYPE>`` in a cause."""
    if "<stored " not in cause:
        return cause
    with Butler.from_config(str(root)) as butler:
        for dataset_type in ("casu_stack", "cp_image"):
            placeholder = f"<stored {dataset_type}>"
            if placeholder in cause:
                ref = butler.query_datasets(dataset_type, collections=butler.collections.query("*/raw/*"))[0]
                cause = cause.replace(placeholder, butler.getURI(ref).ospath)
    return cause


@pytest.mark.parametrize("case", list(ROWS))
def test_bad_input(case, inputs, templates, tmp_path):
    instrument, build, could_hang = ROWS[case]
    root = tmp_path / "repo"
    shutil.copytree(templates[instrument], root)
    before_rows, before_files, _ = snapshot(root)
    paths, expected = build(tmp_path / "batch", inputs)
    status, records = (run_isolated if could_hang else run_command)(instrument, root, paths)
    lines = [r.getMessage() for r in records]
    if expected.summary is not None:
        closing = [
            re.sub(r" \(\d+\.\d s\)\.$", "", line)
            for r in records
            if r.name == "lsst.obs.vista.ingest" and (line := r.getMessage()).endswith(" s).")
        ]
        assert closing == [expected.summary]
    assert not [r for r in records if r.exc_info], "no traceback"
    assert all("\n" not in line for line in lines), "every message is one line"
    failed = {r.getMessage() for r in records if r.levelno >= logging.ERROR}
    warned = {r.getMessage() for r in records if r.levelno == logging.WARNING}
    assert failed == {f"{path}: {stored_paths(root, cause)}" for path, cause in expected.failed.items()}
    assert warned == {f"{path}: {cause}" for path, cause in expected.warned.items()} | expected.other_warnings
    assert status == expected.status
    after_rows, after_files, referenced = snapshot(root)
    added = {key: after_rows[key] - before_rows[key] for key in after_rows}
    assert all(before_rows[key] <= after_rows[key] for key in before_rows), "nothing removed"
    counts: dict[str, int] = {}
    for name, _, _ in added["datasets"]:
        counts[name] = counts.get(name, 0) + 1
    assert counts == expected.added
    if not expected.added:
        assert after_rows == before_rows
    # Files: the old ones untouched, new ones only for new datasets, and
    # nothing in the datastore that no dataset refers to.
    assert {k: after_files[k] for k in before_files} == before_files
    assert set(after_files) - {"butler.yaml"} == referenced
    if not expected.added:
        assert after_files == before_files


# ------------------------------------------------- repositories (subprocesses)

BUTLER = Path(sys.executable).with_name("butler")


@pytest.mark.parametrize("case", ["non-existent repository", "read-only repository"])
def test_bad_repository(case, inputs, templates, tmp_path):
    """The two rows whose bad input is the repository: one line on stderr,
    exit status 1, and nothing created or changed."""
    batch = stage_stack(tmp_path / "batch", inputs.stacks[1])["stack"].parent
    if case == "non-existent repository":
        root, prefix = tmp_path / "nowhere", []
        expected = f"Error: {root}: no butler repository there (no butler.yaml)."
    else:
        root, prefix = tmp_path / "repo", without_root_override()
        shutil.copytree(templates["VIRCAM"], root)
        expected = (
            f"Error: {root}: the repository is read-only for this user "
            "(attempt to write a readonly database)."
        )
    before = snapshot(root) if root.exists() else None
    registry = (root / "gen3.sqlite3").read_bytes() if root.exists() else None
    paths = [root, *root.rglob("*")] if root.exists() else []
    for path in paths:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        result = subprocess.run(
            [*prefix, str(BUTLER), "ingest-casu", str(root), str(batch), "--transfer", "copy"],
            capture_output=True,
            text=True,
        )
    finally:
        for path in paths:
            path.chmod(path.stat().st_mode | 0o200)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [expected]
    if before is None:
        assert not root.exists()
    else:
        assert snapshot(root) == before and (root / "gen3.sqlite3").read_bytes() == registry


def test_ingest_images_passes_over_a_fifo_and_follows_a_symlinked_folder(inputs, templates, tmp_path):
    """``ingestImages.py`` (both instruments): a FIFO named like a confidence
    map and a symbolic-link loop are named once each and counted, the
    DECam trio in a symlinked folder is ingested, and the command returns
    within the time limit instead of waiting on the FIFO."""
    root = tmp_path / "repo"
    shutil.copytree(templates["VIRCAM"], root)
    before_rows, _, _ = snapshot(root)
    batch = tmp_path / "batch"
    files = stage_stack(batch / "vircam", inputs.stacks[1], kinds=("stack", "catalog"))
    fifo = batch / "vircam" / inputs.stacks[1].confidence.name
    os.mkfifo(fifo)
    trio = stage_trio(tmp_path / "elsewhere")["ooi"].parent
    (batch / "decam").symlink_to(trio)
    loop = batch / "vircam" / "up"
    loop.symlink_to(batch)
    result = subprocess.run(
        [str(BUTLER.with_name("ingestImages.py")), str(root), str(batch), "--transfer", "copy"],
        capture_output=True,
        text=True,
        timeout=HANG_LIMIT,
        stdin=subprocess.DEVNULL,
    )
    records = log_records(result.stderr)
    assert not [r for r in records if r.exc_info], result.stderr
    stem = inputs.stacks[1].stem
    assert {r.getMessage() for r in records if r.levelno == logging.WARNING} == {
        f"{fifo}: a FIFO (named pipe), {SKIPPED}",
        f"{loop}: symlink loop: leads back to {batch}; not followed again",
        f"{files['stack']}: no casu_confidence (CIR_CPM = '{fifo.name}[1]' names no file; "
        f"looked for {LOOKED_FOR.format(stem=stem)}); ingested without it",
    }
    closing = [re.sub(r" \(\d+\.\d s\)\.$", "", r.getMessage()) for r in records if r.msg.endswith(" s).")]
    # Instruments ingest in their registration order (policy directory
    # names: decam before vircam); the first with files reports the paths
    # passed over.
    assert closing == [
        f"{ingested(3, 3)}; skipped 2 paths: 1 FIFO, 1 symlink loop",
        ingested(2, 4),
    ]
    assert result.returncode == 0
    after_rows, _, _ = snapshot(root)
    added = sorted(name for name, _, _ in after_rows["datasets"] - before_rows["datasets"])
    assert added == ["casu_catalog"] * 2 + ["casu_stack"] * 2 + ["cp_image", "cp_mask", "cp_weight"]
