"""Reading a main product file together with its companions: the task each
worker process runs."""

from __future__ import annotations

__all__ = ("Candidate", "UnitRead", "failed_main_cause", "read_unit")

import dataclasses
from pathlib import Path

from lsst.utils import doImportType

from .pairing import check_companion, companion_paths, named_owner, references
from .policy import IngestPolicy, ProductPolicy, policy_for_instrument
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

    missing: dict[str, str]
    """Companion products not found, with what was looked for (one line:
    the reference card's value if it named nothing usable, the paths
    tried)."""

    warnings: list[str] = dataclasses.field(default_factory=list)
    """Warnings about the main file's companions, one line each."""


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
    missing: dict[str, str] = {}
    warnings: list[str] = []
    summary = main if isinstance(main, ProductFile) else None
    for product in policy.companions_of(main_product):
        tried = companion_paths(policy, product, candidate.path, candidate.stem, summary)
        path, notes = _choose(policy, product, candidate.path, tried, references(product, summary))
        if path is None:
            missing[product.name] = "; ".join([*notes, "looked for " + ", ".join(p.name for p in tried)])
            continue
        warnings.extend(f"{note}; ingested with {path.name}" for note in notes)
        if isinstance(main, ReadFailure):
            companions[product.name] = ReadFailure(path, product.name, failed_main_cause(main_product.name))
            continue
        companion = read_product_file(instrument, product.name, path)
        if isinstance(companion, ProductFile):
            cause = check_companion(main_product, main, product, companion)
            if cause is not None:
                companion = ReadFailure(path, product.name, cause)
        companions[product.name] = companion
    return UnitRead(candidate=candidate, main=main, companions=companions, missing=missing, warnings=warnings)


def _choose(
    policy: IngestPolicy, product: ProductPolicy, main_path: Path, tried: list[Path], values: list[str]
) -> tuple[Path | None, list[str]]:
    """Return the companion file to use among the candidates (`None` if
    none will do) and notes on the reference card, one line each.

    A candidate whose name makes it the companion of another main file that
    exists (a stack whose CIR_CPM names the confidence map of another
    stack) is left to that file, with a note.  When no file is found, the
    notes also say what each reference card value named.
    """
    card = product.reference_card
    # The file each value names, first value per file (the HDU index differs).
    named = {value.split("[", 1)[0].strip(): value for value in reversed(values)}
    notes: list[str] = []
    for path in tried:
        if not path.is_file():
            continue
        owner = named_owner(policy, product, path, main_path)
        if owner is None:
            return path, notes
        notes.append(f"{card} = {named.get(path.name, path.name)!r} names the {product.name} of {owner.name}")
        named.pop(path.name, None)
    for name, value in named.items():
        match = policy.classify(name)
        if match is None or match[0].name != product.name:
            notes.append(f"{card} = {value!r} is not a {product.name} file name")
        else:
            notes.append(f"{card} = {value!r} names no file")
    return None, notes


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
