"""The ``butler summarize-isr`` subcommand: what VistaIsrTask made."""

from __future__ import annotations

__all__ = ("summarize_isr", "summary_rows")

from collections.abc import Iterable
from typing import Any

import click

from lsst.daf.butler.cli.opt import collections_option, repo_argument, where_option

from .command_style import ButlerSubcommand
from .repository import open_repository

_PLANES = ("NO_DATA", "BAD", "SATURATED")


@click.command(
    short_help="Summarise post_isr_image datasets: noise ratio, masks, zero point.", cls=ButlerSubcommand
)
@repo_argument(required=True)
@collections_option(required=True, help="Collections to search for the datasets to summarise.")
@where_option()
@click.option(
    "--dataset-type",
    default="post_isr_image",
    show_default=True,
    help="Dataset type (storage class VisitImage).",
)
def summarize_isr(
    repo: str, collections: tuple[str, ...], where: str, dataset_type: str, **kwargs: Any
) -> None:
    """Print one line per visit image found in REPO's --collections.

    Columns: data ID, band, NOISE_RATIO (robust background noise over the
    predicted sqrt(variance), sources and masked pixels excluded) with the
    number of background pixels it used, the variance rescale applied, the
    AB zero point (magnitude of 1 ADU), the PSF FWHM in pixels and the
    percentage of pixels in the NO_DATA, BAD and SATURATED planes.
    """
    rows = summary_rows(repo, collections, where, dataset_type)
    header = ("data ID", "band", "noise", "npix", "rescale", "ZP(AB)", "FWHM", *(f"%{p}" for p in _PLANES))
    click.echo("  ".join(f"{h:>10}" if i else f"{h:<44}" for i, h in enumerate(header)))
    for row in rows:
        click.echo("  ".join(f"{v:>10}" if i else f"{v:<44}" for i, v in enumerate(row)))
    if not rows:
        click.echo(f"No {dataset_type} datasets in {', '.join(collections)}.")


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_rows(
    repo: str, collections: Iterable[str], where: str, dataset_type: str
) -> list[tuple[str, ...]]:
    """Return the summary table's rows.

    Parameters
    ----------
    repo : `str`
        Repository URI or alias.
    collections : iterable [`str`]
        Collections to search.
    where : `str`
        Data ID expression ('' for all).
    dataset_type : `str`
        Dataset type of storage class ``VisitImage``.

    Returns
    -------
    rows : `list` [`tuple` [`str`, ...]]
        One row of formatted cells per dataset, in data ID order.
    """
    # Imported here, not each time ``butler`` loads its plugins to list the
    # commands: psf_shape imports lsst.images (and scipy), about 0.7 CPU-s
    # that every butler command would pay.
    from ..isr.handoff import IsrHandoff
    from ..psf_shape import psf_fwhm

    rows = []
    with open_repository(repo, collections=collections) as butler:
        refs = butler.query_datasets(dataset_type, where=where, explain=False)
        for ref in sorted(refs, key=lambda ref: ref.dataId):
            image = butler.get(ref)
            mask = image.mask
            fractions = [
                _fmt(100.0 * mask.get(plane).mean(), 2) if plane in mask.schema.names else "-"
                for plane in _PLANES
            ]
            data_id = " ".join(f"{key}={value}" for key, value in ref.dataId.required.items())
            handoff = IsrHandoff.from_metadata(image.metadata)
            fwhm = psf_fwhm(image.psf, x=float(image.bbox.x.center), y=float(image.bbox.y.center))
            rows.append(
                (
                    data_id,
                    image.band,
                    _fmt(handoff.noise_ratio, 3),
                    _fmt(handoff.noise_ratio_pixels, 0),
                    _fmt(handoff.variance_rescale, 3),
                    _fmt(handoff.zero_point_ab, 3),
                    _fmt(fwhm, 2),
                    *fractions,
                )
            )
    return rows
