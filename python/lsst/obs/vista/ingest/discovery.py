"""Turning the paths a user gives into product files, by name only."""

from __future__ import annotations

__all__ = ("Discovery", "discover")

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from .policy import IngestPolicy
from .units import Candidate


@dataclasses.dataclass
class Discovery:
    """The files found under the given paths."""

    main: list[Candidate] = dataclasses.field(default_factory=list)
    """Files of products that define an exposure, sorted by path."""

    companions: dict[Path, Candidate] = dataclasses.field(default_factory=dict)
    """Files of companion products, keyed by path."""

    rejected: dict[Path, str] = dataclasses.field(default_factory=dict)
    """Paths given explicitly that cannot be ingested, with the cause."""

    ignored: int = 0
    """Files under the given directories whose names match no product."""


def discover(policy: IngestPolicy, paths: Iterable[str | os.PathLike[str]]) -> Discovery:
    """Find the product files among files and directory trees.

    Parameters
    ----------
    policy : `IngestPolicy`
        The dataset policy whose file-name patterns apply.
    paths : iterable [`str` or `os.PathLike`]
        Files and directories (searched recursively).

    Returns
    -------
    discovery : `Discovery`
        The files, classified by name.  A file named twice (or reached
        through two of the paths) appears once.  Files inside directories
        that match no product (sidecars, logs) are counted and skipped; a
        file given explicitly that matches none is rejected.
    """
    discovery = Discovery()
    seen: set[Path] = set()
    patterns = ", ".join(p for product in policy.products.values() for p in product.patterns)
    for given in paths:
        path = Path(given).absolute()
        if path.is_dir():
            files: Iterable[tuple[Path, bool]] = ((f, False) for f in _walk(path))
        elif path.is_file():
            files = [(path, True)]
        else:
            discovery.rejected[path] = "no such file or directory"
            continue
        for file, explicit in files:
            if file in seen:
                continue
            seen.add(file)
            match = policy.classify(file.name)
            if match is None:
                if explicit:
                    discovery.rejected[file] = f"file name matches none of {patterns}"
                else:
                    discovery.ignored += 1
                continue
            product, stem = match
            candidate = Candidate(path=file, product=product.name, stem=stem)
            if product.companion_of is None:
                discovery.main.append(candidate)
            else:
                discovery.companions[file] = candidate
    discovery.main.sort(key=lambda c: c.path)
    return discovery


def _walk(directory: Path) -> Iterable[Path]:
    for root, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(root, name)
