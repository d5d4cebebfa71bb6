"""One-line messages: how the package turns texts and exceptions into the
single line that its commands and reports print."""

from __future__ import annotations

__all__ = ("error_line", "one_line")


def one_line(text: str) -> str:
    """Return a message with its line breaks and runs of blanks made single
    blanks."""
    return " ".join(text.split())


def error_line(err: BaseException) -> str:
    """Return an exception as one line.

    Parameters
    ----------
    err : `BaseException`
        The exception.

    Returns
    -------
    line : `str`
        Its message on one line; without the quotes that ``str()`` puts
        around a `KeyError`'s; prefixed by the exception's type unless it
        is an `OSError`, `ValueError` or `KeyError` (whose messages name
        the cause themselves); the type's name if there is no message.
    """
    text = one_line(str(err))
    if isinstance(err, KeyError):
        # str() of a KeyError is the repr of its argument.
        text = text.strip("\"'")
    if not isinstance(err, (OSError, ValueError, KeyError)):
        text = f"{type(err).__name__}: {text}"
    return text or type(err).__name__
