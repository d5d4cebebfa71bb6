"""The name and version of this package, as outputs record them (``version.py``
is the name eups builds write)."""

from __future__ import annotations

__all__ = ("DISTRIBUTION", "package_version")

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "lsst-obs-vista"
"""Name of the distribution (``pip install`` name) of ``lsst.obs.vista``."""


def package_version() -> str:
    """Return the installed version of the package.

    Returns
    -------
    version : `str`
        The distribution's version, or ``unknown`` when the package runs
        from a source tree that was never installed (eups/scons).
    """
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"
