"""The dataset policy: which reduced products an instrument's ingest knows.

``policy/<instrument>/datasets.yaml`` declares, per product, the dataset type
(name, dimensions, storage class, formatter), the file-name patterns, where a
dataset lives in the file (HDU layout) and how companion products (confidence
maps, catalogues) attach to the product that defines the exposure.  This
module reads and checks that file; it knows nothing about CASU.
"""

from __future__ import annotations

__all__ = ("CardCheck", "HduLayout", "IngestPolicy", "ProductPolicy", "policy_for_instrument")

import dataclasses
import functools
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lsst.daf.butler import DatasetType, DimensionUniverse

from ..camera import CameraDescription, read_camera
from ..discovery import instrument_entry

_POLICY_FILE_NAME = "datasets.yaml"


@dataclasses.dataclass(frozen=True)
class HduLayout:
    """Where a product's datasets live inside its FITS file.

    Per-detector products name each detector's HDU with `extname`, a
    template with a ``{detector}`` (detector ID) or ``{detector_name}`` (its
    name in the camera description) field, or, giving neither `extname` nor
    `index`, by `detector_card` alone: every HDU with that card is the
    dataset of the detector it names (WFCAM's CAMNUM, whose HDUs have no
    fixed EXTNAME: ``WSAIMAGE`` in an archive cutout).  Single-dataset
    products give the HDU `index`.
    """

    kind: str
    """``image`` or ``table``: the type of HDU a dataset is read from."""

    extname: str | None = None
    """EXTNAME template, e.g. ``DET1.CHIP{detector}`` or ``{detector_name}``."""

    index: int | None = None
    """HDU index (0 is the primary) of the single dataset of a file."""

    detector_card: str | None = None
    """Card of a dataset's HDU that holds its detector ID (DECam's CCDNUM,
    checked on ingest; WFCAM's CAMNUM, which selects the HDU)."""

    detector_names: Mapping[int, str] = dataclasses.field(default_factory=dict)
    """Detector names by ID, from the camera description: the detectors a
    dataset may belong to, and the names templates with ``{detector_name}``
    are filled with."""

    def __post_init__(self) -> None:
        if self.kind not in ("image", "table"):
            raise ValueError(f"HDU kind must be 'image' or 'table', not {self.kind!r}")
        if self.extname is not None and self.index is not None:
            raise ValueError("An HDU layout gives at most one of 'extname' and 'index'")
        if self.extname is None and self.index is None and self.detector_card is None:
            raise ValueError("An HDU layout gives 'extname', 'index' or 'detector_card'")
        if self.extname is not None:
            fields = {name for _, name, _, _ in string.Formatter().parse(self.extname) if name is not None}
            if len(fields) != 1 or not fields <= {"detector", "detector_name"}:
                raise ValueError(
                    f"EXTNAME template {self.extname!r} needs exactly one '{{detector}}' or "
                    "'{detector_name}' field"
                )
            if self.uses_names and not self.detector_names:
                raise ValueError(f"EXTNAME template {self.extname!r} needs the camera's detector names")

    @property
    def by_card(self) -> bool:
        """Whether each dataset's HDU is the one whose `detector_card` names
        its detector (no EXTNAME template, no index)."""
        return self.extname is None and self.index is None

    def label_for(self, detector: int) -> str:
        """Return how to name a detector's HDU in messages.

        Parameters
        ----------
        detector : `int`
            Detector ID.

        Returns
        -------
        label : `str`
            Its EXTNAME (``DET1.CHIP3``, ``N15``) or ``CAMNUM = 4``.
        """
        if self.by_card:
            return f"{self.detector_card} = {detector}"
        return self.extname_for(detector)

    @property
    def uses_names(self) -> bool:
        """Whether the EXTNAME template holds detector names, not IDs."""
        return self.extname is not None and "{detector_name}" in self.extname

    def extname_for(self, detector: int) -> str:
        """Return the EXTNAME of a detector's HDU.

        Parameters
        ----------
        detector : `int`
            Detector ID.

        Returns
        -------
        extname : `str`
            The name, e.g. ``DET1.CHIP3`` or ``N15``.
        """
        if self.extname is None:
            raise TypeError("This layout selects its HDU by index or card, not by EXTNAME")
        if self.uses_names:
            return self.extname.format(detector_name=self.detector_names[detector])
        return self.extname.format(detector=detector)

    def detector_of(self, extname: str) -> int | None:
        """Return the detector an EXTNAME belongs to, or `None` if the name
        does not follow the template.

        Parameters
        ----------
        extname : `str`
            Value of an HDU's EXTNAME card.

        Returns
        -------
        detector : `int` or `None`
            Detector ID.
        """
        match = self._extname_pattern.fullmatch(extname.strip())
        if match is None:
            return None
        if self.uses_names:
            return self._ids_by_name.get(match.group(1))
        return int(match.group(1))

    @functools.cached_property
    def _ids_by_name(self) -> dict[str, int]:
        return {name: detector for detector, name in self.detector_names.items()}

    @property
    def _extname_pattern(self) -> re.Pattern[str]:
        assert self.extname is not None
        field = "{detector_name}" if self.uses_names else "{detector}"
        prefix, _, suffix = self.extname.partition(field)
        return re.compile(re.escape(prefix) + (r"(.+)" if self.uses_names else r"(\d+)") + re.escape(suffix))


_CARD_TYPES = ("number", "integer", "string", "date", "filter")


@dataclasses.dataclass(frozen=True)
class CardCheck:
    """What a card must hold for a file to be ingested.

    The card is looked up as the header translation and the task reading
    the dataset see it: in the dataset's HDU, then in the primary HDU.
    """

    keyword: str
    """Keyword, without ``HIERARCH`` for long keywords."""

    type: str
    """``number`` (a finite integer or real), ``integer``, ``string``, ``date`` (an ISO
    date and time as FITS writes them) or ``filter`` (a ``header_name`` of
    a filter of the camera description)."""

    required: bool = False
    """Whether a file without the card is rejected; otherwise only a card
    that is present is checked."""

    above: float | None = None
    """Exclusive lower bound of a number (``0`` for an exposure time)."""

    parser: str | None = None
    """Fully-qualified function that takes the value and raises
    `ValueError` if the value cannot be used (DECam's PLVER parser)."""

    filters: tuple[str, ...] = ()
    """The header names of the camera's filters, for ``filter`` cards."""

    def __post_init__(self) -> None:
        if self.type not in _CARD_TYPES:
            raise ValueError(f"card {self.keyword}: type must be one of {', '.join(_CARD_TYPES)}")
        if self.above is not None and self.type not in ("number", "integer"):
            raise ValueError(f"card {self.keyword}: only numbers have a lower bound")
        if self.type == "filter" and not self.filters:
            raise ValueError(f"card {self.keyword}: a filter card needs the camera's filters")


@dataclasses.dataclass(frozen=True)
class ProductPolicy:
    """One product (file type) and the dataset type it is ingested as."""

    name: str
    """Dataset type name."""

    doc: str
    dimensions: tuple[str, ...]
    storage_class: str
    formatter: str
    """Fully-qualified name of the formatter that reads the datasets."""

    patterns: tuple[str, ...]
    """File-name patterns: literal text and ``*`` wildcards, e.g.
    ``*_st_conf.fit`` or ``*_oow_*.fits.fz``.  What the wildcards match is
    the *stem* that relates a file to its companions, whose names are the
    companion's patterns with the same stem filled in."""

    hdu: HduLayout
    unit: str | None = None
    """Unit of the pixel values (astropy string, e.g. ``adu``, ``adu-2``),
    `None` for dimensionless maps (confidence, quality masks)."""

    companion_of: str | None = None
    """Product that defines the exposure this one belongs to; `None` for a
    product that defines its own exposure."""

    reference_card: str | None = None
    """Card of the main product's HDUs that names this companion's file and
    HDU (``file[index]``)."""

    same_shape: bool = False
    """Whether the companion's pixel grid must equal the main product's."""

    match_cards: tuple[str, ...] = ()
    """Primary-header cards that must have the same value in the companion
    as in the main file (e.g. DECam's EXPNUM), where both have them."""

    warn_if_missing: bool = False
    """Whether a main product without this companion gets a warning."""

    cards: tuple[CardCheck, ...] = ()
    """Cards every dataset's header must hold valid values of, checked on
    ingest so that a file the tasks cannot use is rejected there."""

    celestial_wcs: bool = False
    """Whether every dataset's HDU holds a celestial WCS, checked on ingest
    (finite numbers, a reference latitude within [-90, 90] degrees, a
    non-singular pixel-to-sky matrix) so that a WCS that cannot describe the
    sky is rejected there, naming the card."""

    @property
    def per_detector(self) -> bool:
        """Whether the file holds one dataset per detector."""
        return "detector" in self.dimensions

    @functools.cached_property
    def _regexes(self) -> tuple[re.Pattern[str], ...]:
        return tuple(
            re.compile("(.+?)".join(re.escape(part) for part in pattern.split("*")))
            for pattern in self.patterns
        )

    def stem_of(self, filename: str) -> tuple[str, ...] | None:
        """Return the stem of a file name of this product, or `None` if the
        name matches none of the patterns.

        Parameters
        ----------
        filename : `str`
            Base name of a file.

        Returns
        -------
        stem : `tuple` [`str`, ...] or `None`
            What the wildcards of the first matching pattern stand for.
        """
        for regex in self._regexes:
            match = regex.fullmatch(filename)
            if match is not None:
                return match.groups()
        return None

    def file_names(self, stem: tuple[str, ...]) -> list[str]:
        """Return the names a file of this product with ``stem`` may have.

        Parameters
        ----------
        stem : `tuple` [`str`, ...]
            Stem of a related file (as `stem_of` returns it).

        Returns
        -------
        names : `list` [`str`]
            One name per pattern with as many wildcards as the stem has
            parts, in policy order.
        """
        names = []
        for pattern in self.patterns:
            parts = pattern.split("*")
            if len(parts) == len(stem) + 1:
                names.append(parts[0] + "".join(s + p for s, p in zip(stem, parts[1:], strict=True)))
        return names

    def dataset_type(self, universe: DimensionUniverse) -> DatasetType:
        """Return the dataset type of this product.

        Parameters
        ----------
        universe : `lsst.daf.butler.DimensionUniverse`
            Dimensions of the repository.

        Returns
        -------
        dataset_type : `lsst.daf.butler.DatasetType`
            The dataset type.
        """
        return DatasetType(self.name, self.dimensions, self.storage_class, universe=universe)


@dataclasses.dataclass(frozen=True)
class IngestPolicy:
    """Everything an instrument's ingest reads from its dataset policy."""

    instrument: str
    """Butler name of the instrument, e.g. ``VIRCAM``."""

    instrument_class: str
    """Fully-qualified name of its `lsst.pipe.base.Instrument` subclass."""

    run: str
    """Run collection the datasets are ingested into."""

    chain: str
    """Chained collection that gets `run` as a member."""

    products: Mapping[str, ProductPolicy]
    """Products keyed by dataset type name."""

    @classmethod
    def from_yaml(cls, path: str | Path, *, instrument: str, instrument_class: str) -> IngestPolicy:
        """Read and check a dataset policy file.

        Parameters
        ----------
        path : `str` or `pathlib.Path`
            The YAML file.
        instrument : `str`
            Butler name of the instrument whose policy it is.
        instrument_class : `str`
            Fully-qualified name of its instrument class.

        Returns
        -------
        policy : `IngestPolicy`
            The policy.

        Raises
        ------
        ValueError
            Raised if the file is inconsistent (unknown keys, a companion of
            an unknown product, a malformed pattern, a pattern claimed by
            two products, companions whose patterns have another number of
            wildcards than their main product's).

        Notes
        -----
        The detectors and filters come from the camera description next to
        the policy (``camera.yaml``).
        """
        path = Path(path)
        with open(path) as stream:
            data: dict[str, Any] = yaml.safe_load(stream)
        camera_path = path.parent / "camera.yaml"
        camera = read_camera(camera_path) if camera_path.is_file() else None
        try:
            products = {
                name: _read_product(name, fields, camera) for name, fields in data.pop("products").items()
            }
            policy = cls(products=products, instrument=instrument, instrument_class=instrument_class, **data)
        except (KeyError, TypeError) as err:
            # Missing or unknown keys, named by the dataclass constructors.
            raise ValueError(f"{path}: {err}") from err
        policy._check()
        return policy

    def _check(self) -> None:
        seen: dict[str, str] = {}
        for product in self.products.values():
            if product.companion_of is not None:
                main = self.products.get(product.companion_of)
                if main is None or main.companion_of is not None:
                    raise ValueError(
                        f"{product.name}: companion_of {product.companion_of!r} is not a main product"
                    )
                if main.dimensions != product.dimensions:
                    raise ValueError(f"{product.name}: dimensions differ from those of {main.name}")
                wildcards = {pattern.count("*") for pattern in (*main.patterns, *product.patterns)}
                if len(wildcards) != 1:
                    raise ValueError(
                        f"{product.name}: its patterns and those of {main.name} must have the same number "
                        "of wildcards, for one stem to name both"
                    )
            elif (
                product.reference_card or product.same_shape or product.match_cards or product.warn_if_missing
            ):
                raise ValueError(f"{product.name}: only companion products have companion settings")
            if product.per_detector != (product.hdu.index is None):
                raise ValueError(
                    f"{product.name}: per-detector products find HDUs by extname or detector card, "
                    "others by index"
                )
            for pattern in product.patterns:
                if pattern in seen:
                    raise ValueError(
                        f"Pattern {pattern!r} claimed by both {seen[pattern]} and {product.name}"
                    )
                seen[pattern] = product.name

    def classify(self, filename: str) -> tuple[ProductPolicy, tuple[str, ...]] | None:
        """Return the product a file name belongs to and its stem.

        Parameters
        ----------
        filename : `str`
            Base name of a file.

        Returns
        -------
        match : `tuple` [`ProductPolicy`, `tuple` [`str`, ...]] or `None`
            The product and stem, or `None` if no pattern matches.  If the
            patterns of several products match, the one with the most
            literal text (the shortest stem) wins: ``x_st_conf.fit`` is a
            confidence map although ``*_st*.fit`` would match it too.
        """
        best: tuple[ProductPolicy, tuple[str, ...]] | None = None
        for product in self.products.values():
            stem = product.stem_of(filename)
            if stem is not None and (best is None or _length(stem) < _length(best[1])):
                best = (product, stem)
        return best

    @property
    def main_products(self) -> list[ProductPolicy]:
        """Products that define their own exposure."""
        return [p for p in self.products.values() if p.companion_of is None]

    def companions_of(self, main: ProductPolicy) -> list[ProductPolicy]:
        """Return the companion products of a main product.

        Parameters
        ----------
        main : `ProductPolicy`
            A main product.

        Returns
        -------
        companions : `list` [`ProductPolicy`]
            Its companions, in policy order.
        """
        return [p for p in self.products.values() if p.companion_of == main.name]


def _length(stem: tuple[str, ...]) -> int:
    return sum(len(part) for part in stem)


def _read_product(name: str, fields: Mapping[str, Any], camera: CameraDescription | None) -> ProductPolicy:
    fields = dict(fields)
    patterns = tuple(fields.pop("patterns"))
    for pattern in patterns:
        if "*" not in pattern or any(c in pattern for c in "?[]") or "**" in pattern:
            raise ValueError(f"{name}: pattern {pattern!r} is not literal text with single '*' wildcards")
    hdu = dict(fields.pop("hdu"))
    hdu["detector_names"] = dict(camera.detector_names) if camera is not None else {}
    filters = tuple(camera.filters_by_header_name) if camera is not None else ()
    cards = tuple(
        CardCheck(keyword=keyword, **check, **({"filters": filters} if check.get("type") == "filter" else {}))
        for keyword, check in fields.pop("cards", {}).items()
    )
    return ProductPolicy(
        name=name,
        dimensions=tuple(fields.pop("dimensions")),
        patterns=patterns,
        hdu=HduLayout(**hdu),
        match_cards=tuple(fields.pop("match_cards", ())),
        cards=cards,
        **fields,
    )


@functools.cache
def policy_for_instrument(instrument: str) -> IngestPolicy:
    """Return the dataset policy of an instrument (read once per process).

    Parameters
    ----------
    instrument : `str`
        Butler name of the instrument, e.g. ``VIRCAM``.

    Returns
    -------
    policy : `IngestPolicy`
        The policy read from ``datasets.yaml`` in the instrument's policy
        directory (`lsst.obs.vista.discovery`).

    Raises
    ------
    LookupError
        Raised if the instrument is not registered or has no dataset policy.
    """
    entry = instrument_entry(instrument)
    path = entry.policy_dir / _POLICY_FILE_NAME
    if not path.is_file():
        raise LookupError(f"Instrument {instrument!r} has no dataset policy ({path} does not exist)")
    return IngestPolicy.from_yaml(
        path, instrument=entry.name, instrument_class=f"lsst.obs.vista.instrument.{entry.class_name}"
    )
