"""Reading one product file's headers into what ingest needs (run in worker
processes).

Each file is read once, headers only, and summarised into a small picklable
`ProductFile`: where each dataset's HDU is and its shape, the cards that
relate it to its companions and, for a product that defines an exposure, the
translated dimension records and the sky region of every detector.  Nothing
here touches the butler.
"""

from __future__ import annotations

__all__ = ("HduSummary", "ProductFile", "ReadFailure", "read_product_file")

import dataclasses
from pathlib import Path
from typing import Any

from astro_metadata_translator import MetadataTranslator, ObservationInfo

from ..messages import error_line
from .fits_scan import HduHeader, MergedHeader, scan_hdus
from .policy import HduLayout, ProductPolicy, policy_for_instrument
from .records import TRANSLATED_PROPERTIES, ExposureRecords
from .regions import detector_region, union_region
from .validation import check_cards, describe_hdu


@dataclasses.dataclass(frozen=True)
class HduSummary:
    """The HDU holding one dataset."""

    shape: tuple[int, ...]
    references: dict[str, str] = dataclasses.field(default_factory=dict)
    """Values of the companions' reference cards (e.g. CIR_CPM) present in
    this HDU, keyed by card."""


@dataclasses.dataclass(frozen=True)
class ProductFile:
    """Everything ingest needs from one file, read from its headers."""

    path: Path
    product: str
    """Dataset type name of the product."""

    datasets: dict[int | None, HduSummary]
    """HDU of each dataset, keyed by detector (`None` for a product without
    detectors)."""

    records: ExposureRecords | None
    """Dimension records, for a product that defines its exposure."""

    cards: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Values of the cards that pair companions with their main file
    (`ProductPolicy.match_cards`), where present."""


@dataclasses.dataclass(frozen=True)
class ReadFailure:
    """A file that could not be read; ``cause`` is one line for the user."""

    path: Path
    product: str
    cause: str


def read_product_file(instrument: str, product_name: str, path: Path) -> ProductFile | ReadFailure:
    """Read a file's headers and summarise them.

    Parameters
    ----------
    instrument : `str`
        Butler name of the instrument whose dataset policy applies.
    product_name : `str`
        Product (dataset type) the file name says the file is.
    path : `pathlib.Path`
        The file.

    Returns
    -------
    result : `ProductFile` or `ReadFailure`
        The summary, or why the file cannot be ingested.  Errors are
        returned rather than raised so that a worker process never dies on
        a bad file and the message reaches the parent intact.
    """
    policy = policy_for_instrument(instrument)
    product = policy.products[product_name]
    try:
        hdus = scan_hdus(path)
        datasets = _find_datasets(product, hdus)
        check_cards(product, hdus[0], datasets)
        reference_cards = [c.reference_card for c in policy.companions_of(product) if c.reference_card]
        companions = policy.companions_of(product) if product.companion_of is None else [product]
        match_cards = {card for companion in companions for card in companion.match_cards}
        summaries = {
            key: HduSummary(
                shape=hdu.shape,
                references={card: str(hdu.get(card)) for card in reference_cards if hdu.get(card)},
            )
            for key, hdu in datasets.items()
        }
        first = hdus[min(hdu.index for hdu in datasets.values())]
        merged = MergedHeader(hdus[0], first)
        cards = {card: merged[card] for card in match_cards if merged.get(card) is not None}
        translator = MetadataTranslator.translators[instrument]
        records = None
        if product.companion_of is None:
            records = _translate(translator, merged, path)
            regions = {key: detector_region(hdu, hdu.shape) for key, hdu in datasets.items()}
            records = records.with_regions(
                {key: region for key, region in regions.items() if key is not None},
                union_region(regions.values()),
            )
        else:
            _check_instrument(translator, merged, path, instrument)
    except Exception as err:
        # Whatever is wrong with one file (unreadable, malformed cards, a
        # translation that fails) must not stop the others.
        return ReadFailure(path, product_name, error_line(err))
    return ProductFile(path=path, product=product_name, datasets=summaries, records=records, cards=cards)


def _find_datasets(product: ProductPolicy, hdus: list[HduHeader]) -> dict[int | None, HduHeader]:
    """Return the HDU of each dataset the policy says the file holds."""
    layout = product.hdu
    if layout.index is not None:
        if layout.index >= len(hdus):
            raise ValueError(f"missing extension: no HDU {layout.index} ({len(hdus)} HDUs in the file)")
        hdu = hdus[layout.index]
        if hdu.kind != layout.kind or (layout.kind == "image" and len(hdu.shape) != 2):
            raise ValueError(f"HDU {layout.index} is not a 2-d {layout.kind} HDU")
        return {None: hdu}
    if layout.by_card:
        return _find_datasets_by_card(layout, hdus)
    datasets: dict[int | None, HduHeader] = {}
    for hdu in hdus:
        detector = layout.detector_of(hdu.extname or "")
        if detector is None:
            continue
        if hdu.kind != layout.kind or (layout.kind == "image" and len(hdu.shape) != 2):
            raise ValueError(f"extension {hdu.extname} is not a 2-d {layout.kind} HDU")
        if detector in datasets:
            raise ValueError(f"extension {hdu.extname} appears twice")
        if layout.detector_names and detector not in layout.detector_names:
            raise ValueError(
                f"extension {hdu.extname} is detector {detector}, which the camera description does not "
                f"have (detectors {min(layout.detector_names)}-{max(layout.detector_names)})"
            )
        if layout.detector_card is not None:
            number = hdu.get(layout.detector_card)
            if number is None:
                raise ValueError(f"extension {hdu.extname} has no {layout.detector_card} card")
            if isinstance(number, bool) or number != detector:
                raise ValueError(
                    f"extension {hdu.extname} has {layout.detector_card} = {number!r}, not {detector}"
                )
        datasets[detector] = hdu
    if not datasets:
        raise ValueError(f"missing extensions: no {layout.kind} HDU named {layout.extname}")
    return datasets


def _find_datasets_by_card(layout: HduLayout, hdus: list[HduHeader]) -> dict[int | None, HduHeader]:
    """Return the HDUs with the layout's detector card, by the detector
    it names (a primary HDU without data is a header, never a dataset)."""
    card = layout.detector_card
    assert card is not None, "A layout by card has one."
    datasets: dict[int | None, HduHeader] = {}
    for hdu in hdus:
        number = hdu.get(card)
        if number is None or (hdu.index == 0 and not hdu.shape):
            continue
        where = describe_hdu(hdu)
        if hdu.kind != layout.kind or (layout.kind == "image" and len(hdu.shape) != 2):
            raise ValueError(f"{where} is not a 2-d {layout.kind} HDU")
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"{where} has {card} = {number!r}, not a detector number")
        if layout.detector_names and number not in layout.detector_names:
            raise ValueError(
                f"{where} has {card} = {number}, a detector the camera description does not have "
                f"(detectors {min(layout.detector_names)}-{max(layout.detector_names)})"
            )
        if number in datasets:
            raise ValueError(f"{where} repeats {card} = {number} of {describe_hdu(datasets[number])}")
        datasets[number] = hdu
    if not datasets:
        raise ValueError(f"missing extensions: no {layout.kind} HDU with a {card} card")
    return datasets


def _translate(translator: type[MetadataTranslator], header: MergedHeader, path: Path) -> ExposureRecords:
    """Translate the primary header merged with the first dataset HDU's."""
    _check_instrument(translator, header, path, translator.supported_instrument)
    try:
        info = ObservationInfo(
            header,
            filename=str(path),
            translator_class=translator,
            subset=TRANSLATED_PROPERTIES,
            required=TRANSLATED_PROPERTIES,
        )
    except KeyError as err:
        # ObservationInfo names the property; the cause names the card.
        cause = f": {error_line(err.__cause__)}" if isinstance(err.__cause__, Exception) else ""
        raise ValueError(f"header translation failed: {error_line(err)}{cause}") from err
    return ExposureRecords.from_observation_info(info)


def _check_instrument(
    translator: type[MetadataTranslator], header: MergedHeader, path: Path, instrument: str
) -> None:
    """Raise if the header carries another instrument's identification."""
    cards = {key: header[key] for key in ("INSTRUME", "ORIGFILE") if header.get(key) is not None}
    if cards and not translator.can_translate(cards, filename=str(path)):
        found = cards.get("INSTRUME") or cards.get("ORIGFILE")
        raise ValueError(f"wrong instrument: {found!r}, not {instrument}")
