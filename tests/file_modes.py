"""Running a command as if file modes applied to it, for tests of read-only
repositories and files."""

from __future__ import annotations

__all__ = ("without_root_override",)

import os
import shutil

import pytest


def without_root_override() -> list[str]:
    """Return the command prefix under which file modes apply.

    Root ignores file modes unless it gives up the capabilities that let it
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER); ``setpriv`` drops
    them from the bounding set of the command it runs.  Other users need no
    prefix.  The calling test is skipped when running as root without
    ``setpriv``.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]
