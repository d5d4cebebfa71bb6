"""The check for CPython gh-127847 (bps jobs misread quantum graphs) finds
the bug by its behaviour, and bin/find_python.sh prefers a Python without it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsst.obs.vista.batch import has_zipfile_seek_bug

ROOT = Path(__file__).parent.parent
FIND_PYTHON = ROOT / "bin" / "find_python.sh"
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def _affected(version: tuple[int, int, int]) -> bool:
    """Whether a CPython version has the bug, by the releases that fixed it."""
    return (3, 12, 0) <= version < (3, 12, 9) or (3, 13, 0) <= version < (3, 13, 2)


def _find_python(pyenv_root: Path) -> subprocess.CompletedProcess:
    # Only the fake pyenv's versions: Debian's /usr/bin holds no Python >= 3.12.
    environment = {**os.environ, "PATH": "/usr/bin:/bin", "PYENV_ROOT": str(pyenv_root)}
    environment.pop("PYTHON", None)
    return subprocess.run([str(FIND_PYTHON)], capture_output=True, text=True, env=environment)


def _same_interpreter(printed: str, prefix: Path) -> bool:
    return Path(printed.strip()).resolve() == (prefix / "bin" / "python3").resolve()


def test_the_check_agrees_with_the_fixed_releases():
    if sys.implementation.name != "cpython":
        pytest.skip("gh-127847 is a CPython bug")
    assert has_zipfile_seek_bug() == _affected(sys.version_info[:3])


def test_find_python_takes_an_affected_python_with_a_note_when_it_is_the_only_one(tmp_path):
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "3.13.0").symlink_to(sys.base_prefix)
    result = _find_python(tmp_path)
    assert result.returncode == 0, result.stderr
    assert _same_interpreter(result.stdout, Path(sys.base_prefix))
    assert ("gh-127847" in result.stderr) == has_zipfile_seek_bug()


def test_find_python_prefers_a_python_without_the_bug(tmp_path):
    installed = sorted(PYENV_VERSIONS.glob("3.1[2-9].*")) if PYENV_VERSIONS.is_dir() else []
    versions = {prefix: tuple(int(part) for part in prefix.name.split(".")[:3]) for prefix in installed}
    fixed = [prefix for prefix, version in versions.items() if not _affected(version)]
    affected = [prefix for prefix, version in versions.items() if _affected(version)]
    if not fixed or not affected:
        pytest.skip("needs pyenv versions >= 3.12 both with and without gh-127847")
    (tmp_path / "versions").mkdir()
    # The affected one sorts first (newest), so only the check makes the fixed one win.
    (tmp_path / "versions" / "3.99.0").symlink_to(affected[0])
    (tmp_path / "versions" / "3.12.50").symlink_to(fixed[0])
    result = _find_python(tmp_path)
    assert result.returncode == 0, result.stderr
    assert _same_interpreter(result.stdout, fixed[0])
    assert "gh-127847" not in result.stderr
