"""Locations of the package's data directories.

``policy/``, ``config/``, ``pipelines/`` and ``bps/`` sit at the top of the source tree, as in every
LSST obs package, and are linked into the Python package so that the same
paths work from a source checkout (eups/scons, editable install) and from an
installed wheel.
"""

from __future__ import annotations

__all__ = ("BPS_DIR", "CONFIG_DIR", "PACKAGE_DIR", "PIPELINES_DIR", "POLICY_DIR")

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
"""Directory of the ``lsst.obs.vista`` Python package."""

POLICY_DIR = PACKAGE_DIR / "policy"
"""Camera descriptions and dataset declarations (YAML)."""

CONFIG_DIR = PACKAGE_DIR / "config"
"""pex_config override files, one per task ``_DefaultName``."""

PIPELINES_DIR = PACKAGE_DIR / "pipelines"
"""Pipeline YAML, ``<instrument>/ProcessCcd.yaml``."""

BPS_DIR = PACKAGE_DIR / "bps"
"""``bps submit`` configurations: ProcessCcd.yaml and its sites."""
