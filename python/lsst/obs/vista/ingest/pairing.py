"""Finding and checking the companions (confidence map, catalogue) of a main
product file.

A companion is looked for next to its main file: first the file its
reference card names (CASU's ``CIR_CPM = 'v..._st_conf.fit[1]'``, relative
to the main file's directory; the ``[N]`` HDU index is not used because
datasets are matched by EXTNAME), then the file with the same stem and one
of the companion's patterns.  A companion is accepted only if it holds a
dataset for exactly the main file's detectors and, when the policy says so,
with the same pixel shape and the same identifying cards (DECam's EXPNUM).
"""

from __future__ import annotations

__all__ = ("check_companion", "companion_paths", "describe_dataset", "named_owner", "references")

from pathlib import Path

from .policy import IngestPolicy, ProductPolicy
from .reading import ProductFile


def companion_paths(
    policy: IngestPolicy,
    companion: ProductPolicy,
    main_path: Path,
    stem: tuple[str, ...],
    main: ProductFile | None,
) -> list[Path]:
    """Return the paths where a companion may be, most authoritative first.

    Parameters
    ----------
    policy : `IngestPolicy`
        The dataset policy.
    companion : `ProductPolicy`
        The companion product.
    main_path : `pathlib.Path`
        The main product's file.
    stem : `tuple` [`str`, ...]
        Stem of the main file's name.
    main : `ProductFile` or `None`
        Summary of the main file (`None` if it could not be read; then only
        the name pattern is used).

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        Candidate paths without duplicates; they need not exist.
    """
    candidates: list[Path] = []
    if main is not None and companion.reference_card:
        for hdu in main.datasets.values():
            reference = hdu.references.get(companion.reference_card)
            if reference:
                name = reference.split("[", 1)[0].strip()
                match = policy.classify(name)
                # A reference to a file of another kind (or a bare name CASU
                # wrote for a temporary file) cannot be this companion.
                if match is not None and match[0].name == companion.name:
                    candidates.append(main_path.parent / name)
    candidates.extend(main_path.parent / name for name in companion.file_names(stem))
    return list(dict.fromkeys(candidates))


def references(companion: ProductPolicy, main: ProductFile | None) -> list[str]:
    """Return the distinct values of the companion's reference card in the
    main file, in HDU order.

    Parameters
    ----------
    companion : `ProductPolicy`
        The companion product.
    main : `ProductFile` or `None`
        Summary of the main file.

    Returns
    -------
    values : `list` [`str`]
        E.g. ``['v20120924_00100_st_conf.fit[1]', ...]``; empty if the
        product has no reference card or the main file could not be read.
    """
    if main is None or not companion.reference_card:
        return []
    values = (hdu.references.get(companion.reference_card) for hdu in main.datasets.values())
    return list(dict.fromkeys(value for value in values if value))


def named_owner(policy: IngestPolicy, companion: ProductPolicy, path: Path, main_path: Path) -> Path | None:
    """Return the main file a companion's name says it belongs to, if that
    is another file and it exists.

    Parameters
    ----------
    policy : `IngestPolicy`
        The dataset policy.
    companion : `ProductPolicy`
        The companion product.
    path : `pathlib.Path`
        The companion file.
    main_path : `pathlib.Path`
        The main file that looks for it.

    Returns
    -------
    owner : `pathlib.Path` or `None`
        The other main file (same directory, the companion's stem), or
        `None` if the companion's name fits ``main_path`` or no other main
        file of its name exists.
    """
    stem = companion.stem_of(path.name)
    main = policy.products[companion.companion_of] if companion.companion_of else None
    if stem is None or main is None:
        return None
    names = main.file_names(stem)
    if main_path.name in names and main_path.parent == path.parent:
        return None
    return next((path.parent / name for name in names if (path.parent / name).is_file()), None)


def describe_dataset(product: ProductPolicy, key: int | None) -> str:
    """Return how messages name a dataset's HDU.

    Parameters
    ----------
    product : `ProductPolicy`
        The product.
    key : `int` or `None`
        Detector, or `None` for a product without detectors.

    Returns
    -------
    name : `str`
        The EXTNAME (``DET1.CHIP3``), ``CAMNUM = 4`` or ``HDU 1``.
    """
    return product.hdu.label_for(key) if key is not None else f"HDU {product.hdu.index}"


def check_companion(
    main_product: ProductPolicy, main: ProductFile, companion_product: ProductPolicy, companion: ProductFile
) -> str | None:
    """Return why a companion cannot be ingested with its main file, or
    `None` if it can.

    Parameters
    ----------
    main_product : `ProductPolicy`
        Policy of the main product.
    main : `ProductFile`
        The main file.
    companion_product : `ProductPolicy`
        Policy of the companion product.
    companion : `ProductFile`
        The companion file.

    Returns
    -------
    cause : `str` or `None`
        One line for the user.
    """
    for card in companion_product.match_cards:
        ours, theirs = companion.cards.get(card), main.cards.get(card)
        if ours is not None and theirs is not None and ours != theirs:
            return f"{card} = {ours!r} but {main.path.name} has {card} = {theirs!r}: not the same exposure"
    missing = sorted(set(main.datasets) - set(companion.datasets), key=_order)
    if missing:
        names = ", ".join(describe_dataset(companion_product, key) for key in missing)
        return f"missing extensions: {names} (present in {main.path.name})"
    extra = sorted(set(companion.datasets) - set(main.datasets), key=_order)
    if extra:
        names = ", ".join(describe_dataset(companion_product, key) for key in extra)
        return f"extensions {names} have no counterpart in {main.path.name}"
    if companion_product.same_shape:
        for key, hdu in sorted(main.datasets.items(), key=lambda item: _order(item[0])):
            shape = companion.datasets[key].shape
            if shape != hdu.shape:
                return (
                    f"{describe_dataset(companion_product, key)} is {_format_shape(shape)} pixels "
                    f"but {main.path.name} is {_format_shape(hdu.shape)}"
                )
    return None


def _order(key: int | None) -> int:
    return -1 if key is None else key


def _format_shape(shape: tuple[int, ...]) -> str:
    # FITS order (NAXIS1 x NAXIS2), as users read it in headers.
    return "x".join(str(n) for n in reversed(shape))
