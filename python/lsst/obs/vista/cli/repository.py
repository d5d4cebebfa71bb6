"""Opening a butler repository for a command: the user's mistakes (no
repository there, no write permission, an unknown collection or dataset
type) become one-line `click.ClickException` messages, not tracebacks."""

from __future__ import annotations

__all__ = ("open_repository",)

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import click

from lsst.daf.butler import Butler, MissingCollectionError, MissingDatasetTypeError

_READ_ONLY_MARKERS = ("readonly", "read-only", "permission denied")
"""Lower-case fragments of the database errors of a registry the user may
not write (SQLite: ``attempt to write a readonly database``; PostgreSQL:
``permission denied for table``)."""


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
        or the datastore), or if the command names a collection or a
        dataset type the repository does not have.
    """
    try:
        with _quiet(_BUTLER_LOGGER):
            butler = Butler.from_config(
                repo, writeable=writeable, collections=list(collections) if collections is not None else None
            )
    except FileNotFoundError as err:
        raise click.ClickException(f"{repo}: no butler repository there (no butler.yaml).") from err
    except Exception as err:
        if (cause := _read_only_cause(err)) is None:
            raise
        raise click.ClickException(f"{repo}: the repository is read-only for this user ({cause}).") from err
    with butler:
        try:
            yield butler
        except (MissingCollectionError, MissingDatasetTypeError) as err:
            # Both carry their message as their one argument (str() of a
            # KeyError would quote it).
            raise click.ClickException(f"{repo}: {err.args[0] if err.args else err}") from err
        except Exception as err:
            if (cause := _read_only_cause(err)) is None:
                raise
            message = f"{repo}: the repository is read-only for this user ({cause})."
            raise click.ClickException(message) from err
