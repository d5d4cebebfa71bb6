"""Turning the files found under the paths a user gives into product files,
by name only."""

from __future__ import annotations

__all__ = ("Discovery", "discover")

import dataclasses
from pathlib import Path

from .policy import IngestPolicy
from .units import Candidate
from .walk import FoundFiles, SkippedPath


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

    skipped: dict[Path, SkippedPath] = dataclasses.field(default_factory=dict)
    """Entries under the given directories that are not regular files (or
    links that lead to none), passed over unopened."""


def discover(policy: IngestPolicy, found: FoundFiles) -> Discovery:
    """Classify found files by name.

    Parameters
    ----------
    policy : `IngestPolicy`
        The dataset policy whose file-name patterns apply.
    found : `FoundFiles`
        The regular files under the given paths (`find_files`).

    Returns
    -------
    discovery : `Discovery`
        The files, classified by name.  Files inside directories that match
        no product (sidecars, logs) are counted and skipped; a file given
        explicitly that matches none is rejected, as is a given path that
        is no regular file or directory.
    """
    discovery = Discovery(rejected=dict(found.rejected), skipped=dict(found.skipped))
    patterns = ", ".join(p for product in policy.products.values() for p in product.patterns)
    for file in found.files:
        match = policy.classify(file.path.name)
        if match is None:
            if file.explicit:
                discovery.rejected[file.path] = f"file name matches none of {patterns}"
            else:
                discovery.ignored += 1
            continue
        product, stem = match
        candidate = Candidate(path=file.path, product=product.name, stem=stem)
        if product.companion_of is None:
            discovery.main.append(candidate)
        else:
            discovery.companions[file.path] = candidate
    discovery.main.sort(key=lambda c: c.path)
    return discovery
