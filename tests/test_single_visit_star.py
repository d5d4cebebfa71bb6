"""``single_visit_star`` describes itself and its IDs are unique and reproducible.

Two small synthetic VIRCAM pawprint stacks (two visits) of two detectors
each go through isr and calibrateImage in-process, as pipetask runs them;
one detector is calibrated twice.  The catalogues' columns are checked
against Rubin's DP1 ``Source`` table as ``lsst-sdm-schemas`` defines it.
"""

from __future__ import annotations

import math
from importlib.resources import files

import astropy.units as u
import numpy as np
import pyarrow
import pyarrow.ipc
import pytest
import yaml
from astropy.table import vstack
from lsst.daf.butler.formatters.parquet import arrow_to_astropy, astropy_to_arrow

from isr_support import process_ccd_config, read_confidence, read_stack
from lsst.obs.vista import Vircam, VistaIsrTask
from lsst.obs.vista.calibrate import CalibrateImageConfig, CalibrateImageTask
from lsst.obs.vista.discovery import instrument_entries
from lsst.obs.vista.instrument import DecamCp
from lsst.obs.vista.provenance import package_version
from lsst.obs.vista.sim import SimulationConfig, write_pawprint_stack
from lsst.obs.vista.source_id import (
    DETECTOR_BITS,
    ROW_BITS,
    VISIT_BITS,
    SourceIdGenerator,
    pack_source_ids,
    unpack_source_ids,
)

DETECTORS = (1, 2)
VISITS = (0, 1)
"""Indices of the simulated stacks: two visits."""

RUBIN_ID_COLUMN = {"id": "sourceId"}
"""Our columns whose DP1 ``Source`` name differs."""

RUBIN_TYPE_CLASS = {
    "double": "f",
    "float": "f",
    "long": "i",
    "int": "i",
    "short": "i",
    "boolean": "b",
    "char": "U",
}
"""numpy dtype kind of each felis datatype of the DP1 schema."""


@pytest.fixture(scope="module")
def exposures(tmp_path_factory):
    """post_isr_image of each (visit index, detector)."""
    config = SimulationConfig(size=512, detectors=DETECTORS, seed=11, star_density=12.0, galaxy_density=2.0)
    isr = VistaIsrTask(config=process_ccd_config())
    result = {}
    for index in VISITS:
        stack = write_pawprint_stack(tmp_path_factory.mktemp(f"visit{index}"), index, config)
        for detector in DETECTORS:
            extname = f"DET1.CHIP{detector}"
            result[index, detector] = isr.run(
                read_stack(stack.stack, extname), read_confidence(stack.confidence, extname)
            ).outputExposure
    return result


@pytest.fixture(scope="module")
def task():
    config = CalibrateImageConfig()
    Vircam().applyConfigOverrides("calibrateImage", config)
    return CalibrateImageTask(config=config)


@pytest.fixture(scope="module")
def results(exposures, task):
    """calibrateImage's outputs of each (visit index, detector)."""
    return {key: task.run(exposure, name=str(key)) for key, exposure in exposures.items()}


@pytest.fixture(scope="module")
def dp1_source():
    """Rubin's DP1 ``Source`` columns by name."""
    schema = yaml.safe_load((files("lsst.sdm.schemas") / "dp1.yaml").read_text())
    (table,) = (table for table in schema["tables"] if table["name"] == "Source")
    return {column["name"]: column for column in table["columns"]}


def test_ids_are_unique_across_visits_and_detectors(results):
    stars = vstack([result.stars for result in results.values()], metadata_conflicts="silent")
    assert len(stars) > 100
    assert len(np.unique(stars["id"])) == len(stars)
    visit_keys, detectors, rows = unpack_source_ids(stars["id"])
    assert list(detectors) == list(stars["detector"])
    assert [Vircam.expand_visit(int(key)) for key in visit_keys] == list(stars["visit"])
    assert len(set(stars["visit"])) == len(VISITS)
    for result in results.values():
        assert list(unpack_source_ids(result.stars["id"])[2]) == list(range(1, len(result.stars) + 1))


def test_rerun_gives_the_same_catalogue_bit_for_bit(exposures, results, task):
    key = (VISITS[0], DETECTORS[0])
    first = results[key]
    # The Piff fit draws its reserved stars at random: the seed must be in play.
    assert first.exposure.metadata["PSF_MODEL"] == "piff"
    assert first.exposure.metadata["PSF_NRESERVED"] > 0
    again = task.run(exposures[key], name=str(key))
    assert _arrow_bytes(again.stars) == _arrow_bytes(first.stars)


def _arrow_bytes(table) -> bytes:
    """The table as Arrow writes it: data (NaN payloads included), schema, metadata."""
    arrow = astropy_to_arrow(table)
    sink = pyarrow.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, arrow.schema) as writer:
        writer.write_table(arrow)
    return sink.getvalue().to_pybytes()


def test_seeds_differ_between_data_ids(exposures):
    seeds = {
        SourceIdGenerator(info.instrument, info.visit_id, info.detector_num).seed
        for info in (exposure.obs_info for exposure in exposures.values())
    }
    assert len(seeds) == len(exposures)


def test_every_column_is_described(results):
    result = results[VISITS[1], DETECTORS[1]]
    info = result.exposure.obs_info
    stars = arrow_to_astropy(astropy_to_arrow(result.stars))
    for name in stars.colnames:
        column = stars[name]
        assert column.description, name
        if column.dtype.kind == "b":
            assert column.unit is None and column.description.startswith("True if"), name
        elif column.dtype.kind == "f" and name not in ("extendedness", "sizeExtendedness"):
            assert column.unit is not None, name
    assert stars["x"].unit == u.pix and stars["ixx"].unit == u.pix**2
    assert stars["psfInstFlux"].unit == result.exposure.unit and stars["psfFlux"].unit == u.nJy
    assert set(stars["visit"]) == {info.visit_id} and set(stars["detector"]) == {info.detector_num}
    assert set(stars["band"]) == {result.exposure.band}
    assert {key: stars.meta[key] for key in ("INSTRUMENT", "VISIT", "DETECTOR", "BAND")} == {
        "INSTRUMENT": "VIRCAM",
        "VISIT": info.visit_id,
        "DETECTOR": info.detector_num,
        "BAND": result.exposure.band,
    }
    assert stars.meta["PACKAGE_VERSION"] == package_version() != "unknown"


def test_zenith_distance_from_the_airmass(results):
    result = results[VISITS[0], DETECTORS[0]]
    airmass = result.exposure.obs_info.boresight_airmass
    expected = math.degrees(math.acos(1.0 / airmass))
    assert result.exposure.summary_stats.zenithDistance == pytest.approx(expected)


def test_columns_match_rubin_dp1_source(results, dp1_source):
    stars = results[VISITS[0], DETECTORS[0]].stars
    shared = [name for name in stars.colnames if RUBIN_ID_COLUMN.get(name, name) in dp1_source]
    # The columns Rubin's users look for first are all there.
    assert {"id", "visit", "detector", "band", "coord_ra", "x", "xErr", "psfFlux", "ixx"} <= set(shared)
    for name in shared:
        rubin = dp1_source[RUBIN_ID_COLUMN.get(name, name)]
        assert stars[name].dtype.kind == RUBIN_TYPE_CLASS[rubin["datatype"]], name
        rubin_unit = rubin.get("ivoa:unit")
        if rubin_unit is None:
            assert stars[name].unit is None, name
        else:
            assert stars[name].unit == u.Unit(rubin_unit), name


def test_packing_round_trips_at_its_limits():
    visit_keys = [0, 1, (1 << VISIT_BITS) - 1]
    detectors = [0, 62, (1 << DETECTOR_BITS) - 1]
    rows = np.array([1, 2, (1 << ROW_BITS) - 1])
    packed = {}
    for visit_key in visit_keys:
        for detector in detectors:
            ids = pack_source_ids(visit_key, detector, rows)
            assert ids.dtype == np.int64 and (ids > 0).all()
            unpacked = unpack_source_ids(ids)
            assert set(unpacked[0]) == {visit_key} and set(unpacked[1]) == {detector}
            assert list(unpacked[2]) == list(rows)
            packed[visit_key, detector] = ids
    everything = np.concatenate(list(packed.values()))
    assert len(np.unique(everything)) == len(everything)


@pytest.mark.parametrize(
    ("visit_key", "detector", "row", "part"),
    [
        (1 << VISIT_BITS, 1, 1, "visit key"),
        (1, 1 << DETECTOR_BITS, 1, "detector"),
        (1, 1, 1 << ROW_BITS, "row"),
    ],
)
def test_packing_refuses_what_does_not_fit(visit_key, detector, row, part):
    with pytest.raises(ValueError, match=f"^source ID: {part} .* does not fit in"):
        pack_source_ids(visit_key, detector, np.array([row]))


@pytest.mark.parametrize(
    "visit",
    [20091015000000, 20120925291261, 20240229863999, 20991231000002],
)
def test_vircam_compact_visit_round_trips(visit):
    key = Vircam.compact_visit(visit)
    assert 0 <= key < 1 << VISIT_BITS
    assert Vircam.expand_visit(key) == visit


def test_decam_visit_is_its_own_key():
    assert DecamCp.compact_visit(802955) == 802955 == DecamCp.expand_visit(802955)


def test_unknown_instrument_is_one_line():
    """The line names the registered instruments, whatever they are."""
    registered = ", ".join(sorted(instrument_entries()))
    assert {"DECam", "VIRCAM"} <= set(instrument_entries())
    with pytest.raises(LookupError, match=rf"^instrument 'HSC' is not one of obs_vista's \({registered}\)$"):
        SourceIdGenerator("HSC", 1, 1)
