"""Opening a butler repository for a command: the user's mistakes (no
repository there, no write permission, an unknown collection or dataset
type, a query naming an unknown dimension) become one-line
`click.ClickException` messages, not tracebacks, naming the nearest valid
name where there is one (the commands of
`lsst.obs.vista.cli.command_style` log the traceback at DEBUG level)."""

from __future__ import annotations

__all__ = ("collection_exists", "nearest", "open_repository")

import difflib
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import click

from lsst.daf.butler import (
    Butler,
    ButlerUserError,
    InvalidQueryError,
    MissingCollectionError,
    MissingDatasetTypeError,
)

from ..messages import one_line

_READ_ONLY_MARKERS = ("readonly", "read-only", "permission denied")
"""Lower-case fragments of the database errors of a registry the user may
not write (SQLite: ``attempt to write a readonly database``; PostgreSQL:
``permission denied for table``)."""


_WILDCARD = re.compile(r"[*?\[]")
"""Characters that make a collection argument a pattern rather than a name."""

_QUOTED_NAME = re.compile(r"'([^']+)'")
"""The first quoted name of a daf_butler error message (the collection,
dataset type or identifier it did not find)."""

_BUTLER_LOGGER = logging.getLogger("lsst.daf.butler")
"""Logger of daf_butler, which logs its own ERROR line when a butler cannot
be opened, before the exception that this module turns into the one line."""


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Silence ``logger`` (and its children) below CRITICAL for a block."""
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def nearest(name: str, candidates: Iterable[str]) -> str:
    """Return `` (did you mean 'X'?)`` for the valid name nearest to a
    mistyped one, or an empty string if none is near.

    Parameters
    ----------
    name : `str`
        The name the user gave.
    candidates : iterable [`str`]
        The valid names.

    Returns
    -------
    suggestion : `str`
        Text to append to an error message.
    """
    matches = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def collection_exists(butler: Butler, name: str) -> bool:
    """Return whether a repository has a collection of that name (an output
    that exists is resumed, one that does not is created).

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler of the repository.
    name : `str`
        Collection name (not a pattern).

    Returns
    -------
    exists : `bool`
    """
    try:
        butler.collections.get_info(name)
    except MissingCollectionError:
        return False
    return True


def _user_error_line(butler: Butler, error: ButlerUserError) -> str:
    """Return daf_butler's message of a user error on one line, with the
    valid name nearest to the one it did not find."""
    message = one_line(str(error.args[0] if error.args else error))
    found = _QUOTED_NAME.search(message)
    if found is None:
        return message
    if isinstance(error, MissingCollectionError):
        candidates: Iterable[str] = butler.collections.query("*")
    elif isinstance(error, MissingDatasetTypeError):
        candidates = (dataset_type.name for dataset_type in butler.registry.queryDatasetTypes())
    elif isinstance(error, InvalidQueryError) and message.startswith("Unrecognized identifier"):
        candidates = butler.dimensions.getStaticElements().names
    else:
        return message
    return message.rstrip(".") + nearest(found.group(1), candidates) + "."


def _check_collections(butler: Butler, collections: Iterable[str]) -> None:
    """Raise `MissingCollectionError` for the first collection name (not
    pattern) the repository does not have."""
    for name in collections:
        if not _WILDCARD.search(name):
            butler.collections.get_info(name)


def _read_only_cause(error: BaseException) -> str | None:
    """Return what says that ``error`` is a refused write, if it is one."""
    if isinstance(error, PermissionError):
        return f"{error.strerror}: {error.filename}"
    # The registry's database errors come wrapped by SQLAlchemy, the
    # driver's own error as ``orig``.
    original = getattr(error, "orig", None)
    if original is not None and any(marker in str(original).lower() for marker in _READ_ONLY_MARKERS):
        return str(original)
    return None


@contextmanager
def open_repository(
    repo: str, *, writeable: bool = False, collections: Iterable[str] | None = None
) -> Iterator[Butler]:
    """Open a butler for a command, turning the user's mistakes into
    one-line errors.

    Parameters
    ----------
    repo : `str`
        URI or alias of the repository.
    writeable : `bool`, optional
        Whether the command writes to the repository.
    collections : iterable [`str`], optional
        Default collections of the butler.

    Yields
    ------
    butler : `lsst.daf.butler.Butler`
        The open butler, closed on exit.

    Raises
    ------
    click.ClickException
        Raised, naming the repository, if there is no repository at
        ``repo``, if a write is refused (no write permission on the registry
        or the datastore), or if the command names a collection, a dataset
        type or a data ID value the repository does not have or a query
        that is not valid (`lsst.daf.butler.ButlerUserError`).
    """
    collections = list(collections) if collections is not None else None
    try:
        with _quiet(_BUTLER_LOGGER):
            butler = Butler.from_config(repo, writeable=writeable, collections=collections)
    except FileNotFoundError as err:
        raise click.ClickException(f"{repo}: no butler repository there (no butler.yaml).") from err
    except Exception as err:
        if (cause := _read_only_cause(err)) is None:
            raise
        raise click.ClickException(f"{repo}: the repository is read-only for this user ({cause}).") from err
    with butler:
        try:
            _check_collections(butler, collections or ())
            yield butler
        except ButlerUserError as err:
            # Unknown collections, dataset types and data ID values and
            # invalid queries: daf_butler's messages name what was wrong.
            raise click.ClickException(f"{repo}: {_user_error_line(butler, err)}") from err
        except Exception as err:
            if (cause := _read_only_cause(err)) is None:
                raise
            message = f"{repo}: the repository is read-only for this user ({cause})."
            raise click.ClickException(message) from err
