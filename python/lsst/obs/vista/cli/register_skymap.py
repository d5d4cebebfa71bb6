"""The ``butler register-skymap`` subcommand."""

from __future__ import annotations

__all__ = ("register_skymap",)

import click

from lsst.daf.butler.cli.opt import config_file_option, config_option, repo_argument

from .command_style import ButlerSubcommand


@click.command(
    "register-skymap",
    short_help="Register a skymap's tracts and patches (e.g. -C config/skymap/lsst_cells_v1.py).",
    cls=ButlerSubcommand,
)
@repo_argument(required=True)
@config_file_option(
    required=True,
    help="The skymap's config file (config/skymap/NAME.py: a RegisterSkyMapConfig override file).",
)
@config_option(
    metavar="KEY=VALUE",
    help="Override of the config file, e.g. name=my_rings or skyMap.rings.numRings=8 (a choice of a "
    "config choice field is a path element).",
)
def register_skymap(repo: str, config_file: str, config: dict[str, str]) -> None:
    """Register the skymap a config file describes in REPO.

    Writes the skymap's dimension records (skymap, with the SHA-1 hash of
    its geometry; every tract and patch, their regions the sky polygons of
    the tract's pixel box and of each patch's outer box) and its skyMap
    dataset (the config, storage class Config), which tasks read as an
    input, to run skymaps, all in one transaction.  Registering a skymap
    that is registered with the same geometry does nothing; a name
    registered with another geometry is refused.  The exit status is 1 if
    nothing could be registered.

    A full-sky skymap is large: lsst_cells_v1 has 18938 tracts and 1893800
    patches, which take about 3 CPU-minutes and 1.4 GB in an SQLite
    registry.
    """
    # Imported when the command runs, not each time ``butler`` loads its
    # plugins to list the commands.
    from ..skymap import SkyMapRegistrationError, load_register_config
    from ..skymap import register_skymap as register
    from .repository import open_repository

    try:
        skymap_config = load_register_config(config_file, config)
        with open_repository(repo, writeable=True) as butler:
            register(butler, skymap_config)
    except SkyMapRegistrationError as error:
        raise click.ClickException(str(error)) from error
