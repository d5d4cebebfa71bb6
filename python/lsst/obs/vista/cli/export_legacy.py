"""The ``butler export-legacy`` subcommand: post_isr_image in afw Exposure layout."""

from __future__ import annotations

__all__ = ("export_legacy", "legacy_file_name", "write_legacy_files")

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from lsst.daf.butler import DatasetRef
from lsst.daf.butler.cli.opt import collections_option, repo_argument, where_option

from .command_style import ButlerSubcommand
from .repository import open_repository


@click.command(short_help="Write visit images in the FITS layout of afw Exposures.", cls=ButlerSubcommand)
@repo_argument(required=True)
@click.argument("directory", metavar="DIRECTORY")
@collections_option(required=True, help="Collections to search for the datasets to export.")
@where_option()
@click.option(
    "--dataset-type",
    default="post_isr_image",
    show_default=True,
    help="Dataset type to export (storage class VisitImage).",
)
@click.option("--overwrite/--no-overwrite", default=False, help="Replace files that already exist.")
def export_legacy(
    repo: str,
    directory: str,
    collections: tuple[str, ...],
    where: str,
    dataset_type: str,
    overwrite: bool,
    **kwargs: Any,
) -> None:
    """Export visit images from REPO to DIRECTORY as afw Exposure FITS files.

    Each dataset is written to DIRECTORY/<dataset type>_<data ID>.fits, e.g.
    post_isr_image_VIRCAM_detector2_exposure20120925037801.fits,
    with a primary HDU of metadata and IMAGE, MASK (MP_* plane cards) and
    VARIANCE HDUs carrying the FITS WCS and LTV1/LTV2: the layout
    lsst.afw.image.ExposureF.readFits reads, and that
    lsst.images.MaskedImage.read_legacy reads back.  The paths written are
    printed, one per line.
    """
    paths = write_legacy_files(repo, Path(directory), collections, where, dataset_type, overwrite=overwrite)
    for path in paths:
        click.echo(str(path))


def write_legacy_files(
    repo: str,
    directory: Path,
    collections: Iterable[str],
    where: str,
    dataset_type: str,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write every matching visit image in afw Exposure FITS layout.

    Parameters
    ----------
    repo : `str`
        URI or alias of the repository.
    directory : `pathlib.Path`
        Output directory (created if needed).
    collections : iterable [`str`]
        Collections to search.
    where : `str`
        Data ID expression restricting the datasets ('' for all).
    dataset_type : `str`
        Dataset type of storage class ``VisitImage``.
    overwrite : `bool`
        Replace existing files.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        Files written, in data ID order.

    Raises
    ------
    click.ClickException
        Raised, before anything is written, if no dataset matches or a file
        exists and ``overwrite`` is not set.
    """
    # Imported here so that listing ``butler`` commands does not load lsst-images.
    from ..isr.legacy_export import write_legacy_exposure

    paths: list[Path] = []
    with open_repository(repo) as butler:
        refs = butler.query_datasets(
            dataset_type, collections=list(collections), where=where, order_by=[], explain=False
        )
        if not refs:
            matching = f" matching {where!r}" if where else ""
            raise click.ClickException(f"No {dataset_type} datasets{matching} in {', '.join(collections)}.")
        refs = sorted(refs, key=lambda ref: ref.dataId.required_values)
        existing = [path for ref in refs if (path := directory / legacy_file_name(ref)).exists()]
        if existing and not overwrite:
            raise click.ClickException(
                f"{existing[0]} already exists ({len(existing)} of the {len(refs)} files do); "
                "pass --overwrite to replace them."
            )
        directory.mkdir(parents=True, exist_ok=True)
        for ref in refs:
            path = directory / legacy_file_name(ref)
            write_legacy_exposure(butler.get(ref), path, overwrite=overwrite)
            paths.append(path)
    return paths


def legacy_file_name(ref: DatasetRef) -> str:
    """Return the file name `write_legacy_files` gives a dataset.

    Parameters
    ----------
    ref : `lsst.daf.butler.DatasetRef`
        The dataset.

    Returns
    -------
    name : `str`
        ``<dataset type>_<instrument>_<dimension><value>...fits`` over the
        required dimensions of its data ID.
    """
    parts = [
        str(value) if key == "instrument" else f"{key}{value}" for key, value in ref.dataId.required.items()
    ]
    return f"{ref.datasetType.name}_{'_'.join(parts)}.fits"
