"""Forced photometry on visits against truth: `coadd_field`'s two-detector
visits, eight of them, with constant stars and a few sinusoidal variables
at known positions, measured in-process by forcedPhotCcd at the objects'
positions, and the light curves read back from a real butler repository.

The object table holds the true positions (packed objectIds, one
non-primary row), so that the light curves measure the visit photometry,
not the coadd centroids (which test_objects_truth checks).

Checked: constant stars' light-curve chi2/dof within 20% of 1 and flux
pulls against truth; the variables' amplitudes within 10%; primary rows
only; the visit's aperture correction applied; units and descriptions; an
image without photometric calibration; `light_curve` through the butler
equals the task's rows.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table, vstack
from lsst.daf.butler import Butler, DatasetType
from lsst.images import VisitImage
from lsst.images.fields import ChebyshevField
from lsst.pipe.base import NoWorkFound

import coadd_field as field
from lsst.obs.vista import Vircam
from lsst.obs.vista.calibrate.aperture_correction import PSF_FLUX_ALGORITHM
from lsst.obs.vista.objects import ForcedPhotCcdTask, light_curve, pack_object_ids
from lsst.obs.vista.skymap import RegisterSkyMapConfig, register_skymap

SKYMAP = "forced_test"

VISITS = field.VISITS + tuple(
    dataclasses.replace(visit, visit=visit.visit + 4, offset=(-visit.offset[1], visit.offset[0]))
    for visit in field.VISITS
)
"""Eight visits: the coadd field's four and four more dithers."""

N_VARIABLES = 6
"""Stars whose flux varies from visit to visit."""


@dataclasses.dataclass
class Stars:
    """Positions (deg), mean fluxes (nJy), relative amplitudes and phases."""

    ra: np.ndarray
    dec: np.ndarray
    flux: np.ndarray
    amplitude: np.ndarray
    phase: np.ndarray

    def flux_in(self, visit: int) -> np.ndarray:
        """True fluxes (nJy) in a visit: a sinusoid of the visit number."""
        return self.flux * (1.0 + self.amplitude * np.sin(2 * math.pi * visit / 5.3 + self.phase))


@pytest.fixture(scope="module")
def stars() -> Stars:
    grid = field.stars(n_side=10, seed=5)
    rng = np.random.default_rng(17)
    n = grid["ra"].size
    magnitude = rng.uniform(19.5, 21.5, n)
    amplitude = np.zeros(n)
    variables = rng.choice(n, N_VARIABLES, replace=False)
    magnitude[variables] = 18.5
    amplitude[variables] = rng.uniform(0.2, 0.4, N_VARIABLES)
    return Stars(
        ra=grid["ra"],
        dec=grid["dec"],
        flux=10 ** (-0.4 * (magnitude - 31.4)),
        amplitude=amplitude,
        phase=rng.uniform(0, 2 * math.pi, n),
    )


@pytest.fixture(scope="module")
def patch_id() -> int:
    return field.skymap()[0].find_patch(*field.CENTRE).id


@pytest.fixture(scope="module")
def objects(stars, patch_id) -> Table:
    """An object table at the true positions and a non-primary copy of the first."""
    n = stars.ra.size
    table = Table()
    table["objectId"] = pack_object_ids(0, patch_id, np.arange(1, n + 2))
    table["coord_ra"] = np.append(stars.ra, stars.ra[0])
    table["coord_dec"] = np.append(stars.dec, stars.dec[0])
    table["detect_isPrimary"] = np.arange(n + 1) < n
    return table


@pytest.fixture(scope="module")
def images(tmp_path_factory, stars):
    base = field.make_base(Path(tmp_path_factory.mktemp("forced_visit_base")))
    result = {}
    for visit in VISITS:
        truth = {"ra": stars.ra, "dec": stars.dec, "flux": stars.flux_in(visit.visit)}
        for detector, image in field.make_visit_images(base, visit, truth, seed=31).items():
            result[visit.visit, detector] = image
    return result


@pytest.fixture(scope="module")
def forced(images, objects) -> dict[tuple[int, int], Table]:
    task = ForcedPhotCcdTask()
    return {
        key: task.run(image, objects, visit=key[0], detector=key[1]).forced_source
        for key, image in images.items()
    }


@pytest.fixture(scope="module")
def sources(forced) -> Table:
    return vstack(list(forced.values()))


def truth_of(sources: Table, objects: Table, stars: Stars) -> np.ndarray:
    """Truth flux (nJy) of every row."""
    index = np.searchsorted(np.asarray(objects["objectId"]), np.asarray(sources["objectId"]))
    visits = np.asarray(sources["visit"])
    return np.array([stars.flux_in(v)[i] for i, v in zip(index, visits, strict=True)])


def usable(sources: Table) -> np.ndarray:
    return ~np.asarray(sources["psfFlux_flag"]) & ~np.asarray(sources["pixelFlags_edge"])


def test_constant_stars_chi2(sources, objects, stars) -> None:
    good = sources[usable(sources)]
    index = np.searchsorted(np.asarray(objects["objectId"]), np.asarray(good["objectId"]))
    chi2, dof = 0.0, 0
    for row in np.unique(index[stars.amplitude[index] == 0]):
        curve = good[index == row]
        if len(curve) < 2:
            continue
        flux, error = np.asarray(curve["psfFlux"]), np.asarray(curve["psfFluxErr"])
        weights = error**-2
        mean = np.sum(weights * flux) / np.sum(weights)
        chi2 += float(np.sum(((flux - mean) / error) ** 2))
        dof += len(curve) - 1
    print(f"constant stars: chi2/dof {chi2 / dof:.3f} over {dof} dof")
    assert dof > 400
    assert abs(chi2 / dof - 1) < 0.2


def test_pulls_against_truth(sources, objects, stars) -> None:
    good = sources[usable(sources)]
    pulls = (np.asarray(good["psfFlux"]) - truth_of(good, objects, stars)) / np.asarray(good["psfFluxErr"])
    median = float(np.median(pulls))
    robust_std = 1.4826 * float(np.median(np.abs(pulls - median)))
    print(f"pulls: median {median:.3f}, robust std {robust_std:.3f} of {pulls.size}")
    assert abs(median) < 0.1
    assert abs(robust_std - 1) < 0.1


def test_variable_amplitudes(sources, objects, stars) -> None:
    good = sources[usable(sources)]
    index = np.searchsorted(np.asarray(objects["objectId"]), np.asarray(good["objectId"]))
    truth = truth_of(good, objects, stars)
    ratios = []
    for row in np.nonzero(stars.amplitude > 0)[0]:
        mine = index == row
        assert np.count_nonzero(mine) >= 4, "a variable seen in too few visits"
        measured = np.ptp(np.asarray(good["psfFlux"])[mine])
        ratios.append(measured / np.ptp(truth[mine]))
    print("variables: measured / true amplitude", np.round(ratios, 3))
    assert np.all(np.abs(np.array(ratios) - 1) < 0.1)


def test_primary_rows_and_columns(forced, sources, objects) -> None:
    non_primary = objects["objectId"][~objects["detect_isPrimary"]][0]
    assert non_primary not in sources["objectId"]
    for table in forced.values():
        assert len(np.unique(table["objectId"])) == len(table)
    assert set(np.unique(sources["band"])) == {next(iter(forced.values()))["band"][0]}
    assert str(sources["psfFlux"].unit) == "nJy" and str(sources["coord_ra"].unit) == "deg"
    assert all(sources[name].description for name in sources.colnames)
    assert np.all(sources["tract"] == 0)


def test_aperture_correction_applied(images, objects, forced) -> None:
    (key, image) = next(iter(images.items()))
    corrected = VisitImage(
        image.image,
        mask=image.mask,
        variance=image.variance,
        psf=image.psf,
        obs_info=image.obs_info,
        detector=image.detector,
        photometric_scaling=image.photometric_scaling,
        aperture_corrections={PSF_FLUX_ALGORITHM: ChebyshevField(image.bbox, np.array([[1.04]]))},
        band=image.band,
        metadata={},
    )
    table = ForcedPhotCcdTask().run(corrected, objects, visit=key[0], detector=key[1]).forced_source
    np.testing.assert_allclose(table["psfFlux"], 1.04 * forced[key]["psfFlux"], rtol=1e-6)
    np.testing.assert_allclose(table["psfFluxErr"], 1.04 * forced[key]["psfFluxErr"], rtol=1e-6)


def test_no_photometric_calibration(images, objects) -> None:
    image = next(iter(images.values()))
    uncalibrated = VisitImage(
        image.image,
        mask=image.mask,
        variance=image.variance,
        psf=image.psf,
        obs_info=image.obs_info,
        detector=image.detector,
        band=image.band,
        metadata={},
    )
    with pytest.raises(NoWorkFound, match="no photometric calibration"):
        ForcedPhotCcdTask().run(uncalibrated, objects, visit=1, detector=1, name="visit=1,detector=1")


@pytest.fixture(scope="module")
def repository(tmp_path_factory, forced, images) -> Path:
    """A plain repository holding the forced sources."""
    root = tmp_path_factory.mktemp("forced_repo")
    Butler.makeRepo(str(root))
    butler = Butler.from_config(str(root), writeable=True)
    Vircam().register(butler.registry)
    config = RegisterSkyMapConfig()
    config.name = SKYMAP
    config.skyMap.name = "discrete"
    config.skyMap["discrete"] = field.skymap_config()
    register_skymap(butler, config)
    band = str(next(iter(forced.values()))["band"][0])
    (physical_filter,) = butler.registry.queryDimensionRecords(
        "physical_filter", instrument="VIRCAM", band=band
    )
    butler.registry.insertDimensionData("day_obs", {"instrument": "VIRCAM", "id": 20260101})
    for visit in VISITS:
        butler.registry.insertDimensionData(
            "visit",
            {
                "instrument": "VIRCAM",
                "id": visit.visit,
                "name": f"v{visit.visit}",
                "physical_filter": physical_filter.name,
                "day_obs": 20260101,
            },
        )
    dataset_type = DatasetType(
        "object_forced_source",
        ("instrument", "visit", "detector", "skymap", "tract"),
        "ArrowAstropy",
        universe=butler.dimensions,
    )
    butler.registry.registerDatasetType(dataset_type)
    butler.collections.register("forced")
    for (visit, detector), table in forced.items():
        butler.put(
            table, dataset_type, instrument="VIRCAM", visit=visit, detector=detector, skymap=SKYMAP, tract=0,
            run="forced",
        )  # fmt: skip
    return root


def test_light_curve_from_butler(repository, sources, objects, stars) -> None:
    butler = Butler.from_config(str(repository))
    variable = int(objects["objectId"][np.nonzero(stars.amplitude > 0)[0][0]])
    curve = light_curve(butler, variable, skymap=SKYMAP, collections="forced")
    expected = sources[sources["objectId"] == variable]
    assert len(curve) == len(expected) >= 4
    assert np.all(np.diff(curve["midpointMjdTai"]) >= 0)
    assert sorted(zip(curve["visit"], curve["detector"], curve["psfFlux"], strict=True)) == sorted(
        zip(expected["visit"], expected["detector"], expected["psfFlux"], strict=True)
    )
    assert str(curve["psfFlux"].unit) == "nJy"
    assert len(light_curve(butler, int(objects["objectId"][-1]), skymap=SKYMAP, collections="forced")) == 0
