"""The dataset policy: which reduced products an instrument's ingest knows.

``policy/<instrument>/datasets.yaml`` declares, per product, the dataset type
(name, dimensions, storage class, formatter), the file-name patterns, where a
dataset lives in the file (HDU layout) and how companion products (confidence
maps, catalogues) attach to the product that defines the exposure.  This
module reads and checks that file; it knows nothing about CASU.
"""

from __future__ import annotations

__all__ = ("HduLayout", "IngestPolicy", "ProductPolicy", "policy_for_instrument")

import dataclasses
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from lsst.daf.butler import DatasetType, DimensionUniverse

from .._resources import POLICY_DIR

_POLICY_FILE_NAME = "datasets.yaml"


@dataclasses.dataclass(frozen=True)
class HduLayout:
    """Where a product's datasets live inside its FITS file.

    Exactly one of `extname` and `index` is set: per-detector products name
    each detector's HDU with `extname` (a template with a ``{detector}``
    field), single-dataset products give the HDU `index`.
    """

    kind: str
    """``image`` or ``table``: the type of HDU a dataset is read from."""

    extname: str | None = None
    """EXTNAME template with a ``{detector}`` field, e.g. ``DET1.CHIP{detector}``."""

    index: int | None = None
    """HDU index (0 is the primary) of the single dataset of a file."""

    def __post_init__(self) -> None:
        if self.kind not in ("image", "table"):
            raise ValueError(f"HDU kind must be 'image' or 'table', not {self.kind!r}")
        if (self.extname is None) == (self.index is None):
            raise ValueError("An HDU layout gives exactly one of 'extname' and 'index'")
        if self.extname is not None and "{detector}" not in self.extname:
            raise ValueError(f"EXTNAME template {self.extname!r} has no '{{detector}}' field")

    def extname_for(self, detector: int) -> str:
        """Return the EXTNAME of a detector's HDU.

        Parameters
        ----------
        detector : `int`
            Detector ID.

        Returns
        -------
        extname : `str`
            The name, e.g. ``DET1.CHIP3``.
        """
        if self.extname is None:
            raise TypeError("This layout selects its HDU by index, not by detector")
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
        return int(match.group(1)) if match else None

    @property
    def _extname_pattern(self) -> re.Pattern[str]:
        assert self.extname is not None
        prefix, _, suffix = self.extname.partition("{detector}")
        return re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix))


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
    """File-name patterns, each ``*`` followed by the suffix that identifies
    the product (e.g. ``*_st_conf.fit``); what the ``*`` matches is the stem
    that relates a file to its companions."""

    hdu: HduLayout
    companion_of: str | None = None
    """Product that defines the exposure this one belongs to; `None` for a
    product that defines its own exposure."""

    reference_card: str | None = None
    """Card of the main product's HDUs that names this companion's file and
    HDU (``file[index]``)."""

    same_shape: bool = False
    """Whether the companion's pixel grid must equal the main product's."""

    warn_if_missing: bool = False
    """Whether a main product without this companion gets a warning."""

    @property
    def per_detector(self) -> bool:
        """Whether the file holds one dataset per detector."""
        return "detector" in self.dimensions

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The file-name suffixes of `patterns`."""
        return tuple(pattern[1:] for pattern in self.patterns)

    def stem_of(self, filename: str) -> str | None:
        """Return the stem of a file name of this product, or `None` if the
        name matches none of the patterns.

        Parameters
        ----------
        filename : `str`
            Base name of a file.

        Returns
        -------
        stem : `str` or `None`
            What the ``*`` of the matching pattern stands for.
        """
        for suffix in self.suffixes:
            if filename.endswith(suffix) and len(filename) > len(suffix):
                return filename[: -len(suffix)]
        return None

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
    def from_yaml(cls, path: str | Path) -> IngestPolicy:
        """Read and check a dataset policy file.

        Parameters
        ----------
        path : `str` or `pathlib.Path`
            The YAML file.

        Returns
        -------
        policy : `IngestPolicy`
            The policy.

        Raises
        ------
        ValueError
            Raised if the file is inconsistent (unknown keys, a companion of
            an unknown product, a pattern that is not ``*<suffix>``, a suffix
            claimed by two products).
        """
        with open(path) as stream:
            data: dict[str, Any] = yaml.safe_load(stream)
        try:
            products = {name: _read_product(name, fields) for name, fields in data.pop("products").items()}
            policy = cls(products=products, **data)
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
            elif product.reference_card or product.same_shape or product.warn_if_missing:
                raise ValueError(f"{product.name}: only companion products have companion settings")
            if product.per_detector != (product.hdu.extname is not None):
                raise ValueError(
                    f"{product.name}: per-detector products name HDUs by extname, others by index"
                )
            for suffix in product.suffixes:
                if suffix in seen:
                    raise ValueError(f"Suffix {suffix!r} claimed by both {seen[suffix]} and {product.name}")
                seen[suffix] = product.name

    def classify(self, filename: str) -> tuple[ProductPolicy, str] | None:
        """Return the product a file name belongs to and its stem.

        Parameters
        ----------
        filename : `str`
            Base name of a file.

        Returns
        -------
        match : `tuple` [`ProductPolicy`, `str`] or `None`
            The product and stem, or `None` if no pattern matches.  If the
            suffixes of several products match, the longest wins.
        """
        best: tuple[ProductPolicy, str] | None = None
        for product in self.products.values():
            stem = product.stem_of(filename)
            if stem is not None and (best is None or len(stem) < len(best[1])):
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


def _read_product(name: str, fields: Mapping[str, Any]) -> ProductPolicy:
    fields = dict(fields)
    patterns = tuple(fields.pop("patterns"))
    for pattern in patterns:
        if not pattern.startswith("*") or any(c in pattern[1:] for c in "*?["):
            raise ValueError(f"{name}: pattern {pattern!r} is not '*' followed by a literal suffix")
    return ProductPolicy(
        name=name,
        dimensions=tuple(fields.pop("dimensions")),
        patterns=patterns,
        hdu=HduLayout(**fields.pop("hdu")),
        **fields,
    )


@cache
def policy_for_instrument(instrument: str) -> IngestPolicy:
    """Return the dataset policy of an instrument (read once per process).

    Parameters
    ----------
    instrument : `str`
        Butler name of the instrument, e.g. ``VIRCAM``.

    Returns
    -------
    policy : `IngestPolicy`
        The policy read from ``policy/<instrument in lower case>/datasets.yaml``,
        the directory every `~lsst.obs.vista.PolicyInstrument` keeps its
        camera description in.

    Raises
    ------
    LookupError
        Raised if the instrument has no dataset policy.
    """
    path = POLICY_DIR / instrument.lower() / _POLICY_FILE_NAME
    if not path.is_file():
        raise LookupError(f"Instrument {instrument!r} has no dataset policy ({path} does not exist)")
    policy = IngestPolicy.from_yaml(path)
    if policy.instrument != instrument:
        raise LookupError(f"{path} declares instrument {policy.instrument!r}, not {instrument!r}")
    return policy
