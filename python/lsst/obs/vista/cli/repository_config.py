"""What this package's pipelines need in a repository's configuration, added
before a command does any work.

``calibrateImage`` writes ``preliminary_visit_image_background`` as an
lsst-images ``BackgroundMap``, a storage class daf_butler declares without a
default formatter, so a repository made by a plain ``butler create`` cannot
store it.  The package's seed (``config/butler/seed.yaml``) names
lsst-images' own formatter; a repository created without it gets the same
entry in its ``butler.yaml`` from the first of our commands to touch it.
"""

from __future__ import annotations

__all__ = ("BACKGROUND_FORMATTER", "ensure_background_map_formatter")

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click

from lsst.daf.butler import ButlerConfig, Config
from lsst.utils.logging import getLogger

from .._resources import CONFIG_DIR

BACKGROUND_FORMATTER = "lsst.images.formatters.GenericFormatter"
"""Formatter of the ``BackgroundMap`` storage class (lsst-images' own, FITS)."""

_KEY = ("datastore", "formatters", "BackgroundMap")
"""Where a repository's configuration names the formatter of a storage class."""

_LOG = getLogger(__name__)


def ensure_background_map_formatter(repo: str, *, report: Callable[[str], object] = _LOG.info) -> None:
    """Make sure a repository's configuration names a formatter for the
    ``BackgroundMap`` storage class, adding lsst-images' if it names none.

    Parameters
    ----------
    repo : `str`
        URI or alias of the repository.
    report : `~collections.abc.Callable` [[`str`], `object`], optional
        Where the line saying what was added to the configuration goes
        (the INFO log by default).

    Raises
    ------
    click.ClickException
        Raised, with one line naming the configuration file and what to add
        to it, if the configuration names no such formatter and cannot be
        changed (not a local file, or the file or its folder is not
        writable).

    Notes
    -----
    The configuration looked at is the one the butler reads (the file
    ``butler create`` wrote, ``REPO/butler.yaml``, merged with daf_butler's
    defaults); a repository whose configuration names a formatter already
    (one created with the package's seed) is left untouched.  The entry
    ``datastore: formatters: BackgroundMap:`` is added to the file, whose
    other entries are kept (written as `lsst.daf.butler.Config` writes them,
    which is how ``butler create`` wrote them), through a temporary file
    renamed over it, so that no reader ever sees a half-written file.  A missing repository is
    left for the command's own opening of the butler to report.
    """
    try:
        config = ButlerConfig(repo)
    except FileNotFoundError:
        return
    if _KEY in config:
        return
    location = config.configFile
    if location is None or not location.isLocal:
        _cannot_change(str(location), "it is not a local file")
    path = Path(location.ospath)
    if not os.access(path, os.W_OK):
        _cannot_change(str(path), "it is not writable")
    content = Config(str(path))
    content[_KEY] = BACKGROUND_FORMATTER
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        _cannot_change(str(path), f"its folder is not writable: {err.strerror}")
    try:
        with os.fdopen(descriptor, "w") as stream:
            content.dump(stream)
        shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    report(
        f"{path}: added datastore.formatters.BackgroundMap: {BACKGROUND_FORMATTER}, since daf_butler "
        "has no formatter for the BackgroundMap storage class of calibrateImage's "
        "preliminary_visit_image_background."
    )


def _cannot_change(path: str, reason: str) -> NoReturn:
    """Raise the one line saying what the configuration at ``path`` lacks
    and how to give it that."""
    raise click.ClickException(
        f"{path} names no formatter for the BackgroundMap storage class (calibrateImage's "
        f"preliminary_visit_image_background) and cannot be changed ({reason}): add the entry "
        f"'BackgroundMap: {BACKGROUND_FORMATTER}' under its 'datastore:' 'formatters:' keys, or create "
        f"the repository with butler create --seed-config {CONFIG_DIR / 'butler' / 'seed.yaml'}."
    )
