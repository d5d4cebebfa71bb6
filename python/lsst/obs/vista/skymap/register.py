"""Registration of a skymap in a butler repository: its ``skymap``,
``tract`` and ``patch`` dimension records and its ``skyMap`` dataset.

The ``skyMap`` dataset (dimension ``skymap``, storage class ``Config``, in
run ``skymaps``) is the `RegisterSkyMapConfig` itself: daf_butler writes and
reads it with pipe_base's pex_config formatter, which needs no formatter of
this package, and `load_skymap` rebuilds the geometry from it.  The
records and the dataset are written in one transaction, so a skymap is
registered completely or not at all.
"""

from __future__ import annotations

__all__ = (
    "SKYMAP_DATASET_TYPE",
    "SKYMAP_RUN",
    "SKYMAP_STORAGE_CLASS",
    "SkyMapRegistrationError",
    "load_register_config",
    "load_skymap",
    "register_skymap",
)

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lsst.daf.butler import Butler, DatasetType, MissingCollectionError, MissingDatasetTypeError
from lsst.utils.logging import PeriodicLogger, getLogger

from .config import RegisterSkyMapConfig, apply_override
from .geometry import SkyMap, make_skymap

_LOG = getLogger("lsst.obs.vista.skymap")

SKYMAP_RUN = "skymaps"
"""Run collection of the ``skyMap`` datasets (Rubin's)."""

SKYMAP_DATASET_TYPE = "skyMap"
"""Dataset type of a skymap's definition, which tasks read as an input."""

SKYMAP_STORAGE_CLASS = "Config"
"""Storage class of the ``skyMap`` dataset: a pex_config `RegisterSkyMapConfig`."""

_BATCH = 20000
"""Patch records inserted per call (bounds the memory of a full-sky skymap)."""


_DATASTORE_LOGGER = "lsst.daf.butler.datastore._datastore"
"""Logger of daf_butler's datastore transactions."""


class _WithoutUndoOfFailedWrite(logging.Filter):
    """Drop the datastore's warning that undoing the ``skyMap`` write failed:
    a write that failed left nothing to undo, and its cause is the one line
    that `SkyMapRegistrationError` reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().endswith("caught while unrolling: artifactWrite")


@contextmanager
def _undo_warnings_dropped() -> Iterator[None]:
    logger = logging.getLogger(_DATASTORE_LOGGER)
    dropper = _WithoutUndoOfFailedWrite()
    logger.addFilter(dropper)
    try:
        yield
    finally:
        logger.removeFilter(dropper)


class SkyMapRegistrationError(RuntimeError):
    """A skymap cannot be registered; the message is one line."""


def _first_line(error: BaseException) -> str:
    """Return the first line of an error's message (pex_config's go on with
    where the field is defined)."""
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


def load_register_config(path: str | Path, overrides: dict[str, str] | None = None) -> RegisterSkyMapConfig:
    """Load a ``config/skymap/NAME.py`` file and ``-c`` overrides.

    Parameters
    ----------
    path : `str` or `pathlib.Path`
        pex_config override file of a `RegisterSkyMapConfig`.
    overrides : `dict` [`str`, `str`], optional
        ``key=value`` overrides applied after the file.

    Returns
    -------
    config : `RegisterSkyMapConfig`
        The validated config.

    Raises
    ------
    SkyMapRegistrationError
        Raised, naming the file or the key, if the file cannot be read or
        the config is invalid.
    """
    path = Path(path)
    config = RegisterSkyMapConfig()
    if not path.is_file():
        raise SkyMapRegistrationError(f"{path}: no such skymap config file")
    try:
        config.load(str(path))
    except Exception as error:
        raise SkyMapRegistrationError(
            f"{path}: not a skymap config ({type(error).__name__}: {_first_line(error)})"
        ) from error
    for key, value in (overrides or {}).items():
        try:
            apply_override(config, key, value)
        except Exception as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else _first_line(error)
            raise SkyMapRegistrationError(f"-c {key}={value}: {message}") from error
    try:
        config.validate()
    except Exception as error:
        raise SkyMapRegistrationError(f"{path}: invalid skymap config ({_first_line(error)})") from error
    return config


def load_skymap(butler: Butler, name: str) -> SkyMap:
    """Return the geometry of a registered skymap from its ``skyMap``
    dataset.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository.
    name : `str`
        Name of the skymap.

    Raises
    ------
    LookupError
        Raised, naming the skymap, if the repository has not registered it.
    """
    try:
        config = butler.get(SKYMAP_DATASET_TYPE, skymap=name, collections=SKYMAP_RUN)
    except (LookupError, MissingDatasetTypeError, MissingCollectionError) as error:
        raise LookupError(
            f"skymap {name!r} is not registered (no {SKYMAP_DATASET_TYPE} dataset in run {SKYMAP_RUN})"
        ) from error
    return make_skymap(config)


def _registered_hash(butler: Butler, name: str) -> bytes | None:
    records = list(butler.registry.queryDimensionRecords("skymap", dataId={"skymap": name}))
    return records[0].hash if records else None


def _dataset_type(butler: Butler) -> DatasetType:
    wanted = DatasetType(SKYMAP_DATASET_TYPE, ("skymap",), SKYMAP_STORAGE_CLASS, universe=butler.dimensions)
    try:
        existing = butler.get_dataset_type(SKYMAP_DATASET_TYPE)
    except MissingDatasetTypeError:
        butler.registry.registerDatasetType(wanted)
        return wanted
    if existing != wanted:
        raise SkyMapRegistrationError(
            f"dataset type {SKYMAP_DATASET_TYPE!r} exists with dimensions {existing.dimensions} and storage "
            f"class {existing.storageClass_name}, not (skymap) and {SKYMAP_STORAGE_CLASS}"
        )
    return existing


def register_skymap(butler: Butler, config: RegisterSkyMapConfig, *, progress_interval: float = 10.0) -> bool:
    """Register a skymap's dimension records and ``skyMap`` dataset.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable butler of the repository.
    config : `RegisterSkyMapConfig`
        The skymap's name and geometry.
    progress_interval : `float`, optional
        Seconds between progress lines.

    Returns
    -------
    written : `bool`
        `True` if the skymap was registered, `False` if the repository held
        it already with the same geometry (nothing written).

    Raises
    ------
    SkyMapRegistrationError
        Raised if the name is registered with another geometry, or the
        repository's ``skyMap`` dataset type is not this package's.
    """
    start = time.perf_counter()
    name = config.name
    skymap = make_skymap(config)
    digest = skymap.hash()
    if _already_registered(butler, name, digest):
        return False
    try:
        n_tracts, n_patches = _write(butler, name, skymap, config, progress_interval)
    except SkyMapRegistrationError:
        raise
    except Exception:
        # Another registration of the name may have committed between the
        # check and the write: judge the name as if it had come first.
        if _already_registered(butler, name, digest):
            return False
        raise
    _LOG.info(
        "Registered skymap %s (hash %s): %d tracts, %d patches, dataset %s in run %s (%.1f s).",
        name,
        digest.hex(),
        n_tracts,
        n_patches,
        SKYMAP_DATASET_TYPE,
        SKYMAP_RUN,
        time.perf_counter() - start,
    )
    return True


def _already_registered(butler: Butler, name: str, digest: bytes) -> bool:
    """Return whether the name is registered with this geometry; raise if it
    is registered with another."""
    registered = _registered_hash(butler, name)
    if registered is None:
        return False
    if registered != digest:
        raise SkyMapRegistrationError(
            f"skymap {name} is registered with another geometry (hash {registered.hex()}) than this "
            f"config's (hash {digest.hex()}); not registered"
        )
    _LOG.info(
        "Skymap %s is already registered with this geometry (hash %s); nothing to do.", name, digest.hex()
    )
    return True


def _write(
    butler: Butler, name: str, skymap: SkyMap, config: RegisterSkyMapConfig, progress_interval: float
) -> tuple[int, int]:
    """Write the records and the dataset in one transaction; return the
    numbers of tracts and patches."""
    digest = skymap.hash()
    progress = PeriodicLogger(_LOG, interval=progress_interval)
    n_patches = 0
    # The dataset type and the run make tables, which daf_butler does not do
    # inside a transaction; they hold nothing of the skymap.
    dataset_type = _dataset_type(butler)
    butler.registry.registerRun(SKYMAP_RUN)
    with _undo_warnings_dropped(), butler.transaction():
        tracts = list(skymap)
        nx_max = max(tract.num_patches[0] for tract in tracts)
        ny_max = max(tract.num_patches[1] for tract in tracts)
        butler.registry.insertDimensionData(
            "skymap",
            {
                "name": name,
                "hash": digest,
                "tract_max": len(tracts),
                "patch_nx_max": nx_max,
                "patch_ny_max": ny_max,
            },
        )
        butler.registry.insertDimensionData(
            "tract", *({"skymap": name, "id": tract.id, "region": tract.region()} for tract in tracts)
        )
        batch: list[dict] = []
        for tract in tracts:
            for patch, region in zip(tract.patches(), tract.patch_regions(), strict=True):
                batch.append(
                    {
                        "skymap": name,
                        "tract": tract.id,
                        "id": patch.id,
                        "cell_x": patch.index[0],
                        "cell_y": patch.index[1],
                        "region": region,
                    }
                )
            if len(batch) >= _BATCH:
                butler.registry.insertDimensionData("patch", *batch)
                n_patches += len(batch)
                batch = []
                progress.log("Inserted the patches of %d/%d tracts.", tract.id + 1, len(tracts))
        if batch:
            butler.registry.insertDimensionData("patch", *batch)
            n_patches += len(batch)
        try:
            butler.put(config, dataset_type, {"skymap": name}, run=SKYMAP_RUN)
        except Exception as error:
            # The datastore wraps the cause (a read-only directory, a full
            # disk) in a message of many lines.
            cause = error
            while cause.__cause__ is not None:
                cause = cause.__cause__
            raise SkyMapRegistrationError(
                f"skymap {name}: the {SKYMAP_DATASET_TYPE} dataset could not be written "
                f"({type(cause).__name__}: {cause}); nothing registered"
            ) from error
    return len(tracts), n_patches
