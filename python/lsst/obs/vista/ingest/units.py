"""Reading a main product file together with its companions: the task each
worker process runs."""

from __future__ import annotations

__all__ = ("Candidate", "UnitRead", "failed_main_cause", "read_unit")

import dataclasses
from pathlib import Path

from lsst.utils import doImportType

from .pairing import check_companion, companion_paths
from .policy import policy_for_instrument
from .reading import ProductFile, ReadFailure, read_product_file


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A file whose name matches a product of the policy."""

    path: Path
    product: str
    """Dataset type name of the product."""

    stem: tuple[str, ...]
    """What the wildcards of the product's file-name pattern matched."""


@dataclasses.dataclass(frozen=True)
class UnitRead:
    """A main file and the companions found for it, read and checked."""

    candidate: Candidate
    main: ProductFile | ReadFailure
    companions: dict[str, ProductFile | ReadFailure]
    """Companions found on disk, keyed by product; a companion that cannot
    go with the main file is a `ReadFailure` saying why."""

    missing: dict[str, list[Path]]
    """Companion products not found, with the paths that were tried."""


def read_unit(instrument: str, candidate: Candidate) -> UnitRead:
    """Read a main product file and look for and read its companions.

    Parameters
    ----------
    instrument : `str`
        Butler name of the instrument whose dataset policy applies.
    candidate : `Candidate`
        A file of a main product.

    Returns
    -------
    unit : `UnitRead`
        The files' summaries or failures.
    """
    policy = policy_for_instrument(instrument)
    # Importing the instrument registers its header translator, which a
    # freshly spawned worker process has not done yet.
    doImportType(policy.instrument_class)
    main_product = policy.products[candidate.product]
    main = read_product_file(instrument, candidate.product, candidate.path)
    companions: dict[str, ProductFile | ReadFailure] = {}
    missing: dict[str, list[Path]] = {}
    for product in policy.companions_of(main_product):
        tried = companion_paths(
            policy, product, candidate.path, candidate.stem, main if isinstance(main, ProductFile) else None
        )
        path = next((p for p in tried if p.is_file()), None)
        if path is None:
            missing[product.name] = tried
            continue
        if isinstance(main, ReadFailure):
            companions[product.name] = ReadFailure(path, product.name, failed_main_cause(main_product.name))
            continue
        companion = read_product_file(instrument, product.name, path)
        if isinstance(companion, ProductFile):
            cause = check_companion(main_product, main, product, companion)
            if cause is not None:
                companion = ReadFailure(path, product.name, cause)
        companions[product.name] = companion
    return UnitRead(candidate=candidate, main=main, companions=companions, missing=missing)


def failed_main_cause(main_product: str) -> str:
    """Return why a companion is not ingested when its main file fails.

    Parameters
    ----------
    main_product : `str`
        Name of the main product.

    Returns
    -------
    cause : `str`
        One line for the user.
    """
    return f"not ingested: the {main_product} it belongs to failed"
