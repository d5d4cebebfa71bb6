"""Decoding of DECam Community Pipeline data-quality masks into mask planes.

The convention (integer codes or bit flags, which codes mean what, from
which CP version) is data: ``policy/decam/dq_mask.yaml``.
"""

from __future__ import annotations

__all__ = ("CpQualityPolicy", "parse_cp_version")

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml
from scipy.ndimage import binary_dilation

from ._resources import POLICY_DIR

_VERSION_NUMBER = re.compile(r"\d+(?:\.\d+)*")


def parse_cp_version(plver: str) -> tuple[int, ...]:
    """Return the numeric part of a CP version string as a tuple.

    Parameters
    ----------
    plver : `str`
        The PLVER card, e.g. ``'V3.9'``, ``'V4.8.2a'``, ``'DES 5.0beta'``,
        ``'5.2.2LS'``.

    Returns
    -------
    version : `tuple` [`int`, ...]
        E.g. ``(4, 8, 2)``; letter suffixes (``a``, ``beta``, ``LS``) do not
        change which conventions apply and are dropped.

    Raises
    ------
    ValueError
        Raised if the string holds no version number.
    """
    match = _VERSION_NUMBER.search(plver)
    if match is None:
        raise ValueError(f"Unrecognised Community Pipeline version (PLVER) {plver!r}.")
    return tuple(int(part) for part in match.group().split("."))


def _at_least(version: tuple[int, ...], threshold: tuple[int, ...]) -> bool:
    width = max(len(version), len(threshold))
    return version + (0,) * (width - len(version)) >= threshold + (0,) * (width - len(threshold))


@dataclasses.dataclass(frozen=True)
class CpQualityPolicy:
    """How a CP ``ood`` mask maps onto mask planes, by CP version."""

    codes_since: tuple[int, ...]
    """First CP version whose masks hold integer codes (bit flags before)."""

    cosmic_ray_codes_since: tuple[int, ...]
    """First CP version whose cosmic-ray code is trusted."""

    saturated_ring: bool
    """Whether code-1 pixels touching saturated ones become saturated."""

    codes: Mapping[int, tuple[str, ...]]
    bits: Mapping[int, tuple[str, ...]]
    extra_planes: Mapping[str, str]
    """Planes (name: description) that lsst-images does not define."""

    @classmethod
    def read(cls, path: str | Path = POLICY_DIR / "decam" / "dq_mask.yaml") -> CpQualityPolicy:
        """Read the policy YAML.

        Parameters
        ----------
        path : `str` or `pathlib.Path`, optional
            Policy file; the package's ``policy/decam/dq_mask.yaml`` by
            default.

        Returns
        -------
        policy : `CpQualityPolicy`
            The decoded policy.
        """
        with open(path) as stream:
            data = yaml.safe_load(stream)
        return cls(
            codes_since=parse_cp_version(data["codes_since"]),
            cosmic_ray_codes_since=parse_cp_version(data["cosmic_ray_codes_since"]),
            saturated_ring=bool(data["saturated_ring"]),
            codes={int(code): tuple(planes) for code, planes in data["codes"].items()},
            bits={int(bit): tuple(planes) for bit, planes in data["bits"].items()},
            extra_planes=dict(data["planes"]),
        )

    @property
    def plane_names(self) -> set[str]:
        """Every plane the decoder can set."""
        return {plane for planes in (*self.codes.values(), *self.bits.values()) for plane in planes}

    def decode(self, dq: np.ndarray, plver: str) -> dict[str, np.ndarray]:
        """Turn a DQ mask into boolean arrays, one per mask plane.

        Parameters
        ----------
        dq : `numpy.ndarray`
            The ``ood`` pixel values.
        plver : `str`
            The product's PLVER card, which decides the convention.

        Returns
        -------
        planes : `dict` [`str`, `numpy.ndarray`]
            Plane name to boolean array; only planes with pixels set appear.
        """
        dq = np.asarray(dq).astype(np.int64, copy=False)
        version = parse_cp_version(plver)
        planes: dict[str, np.ndarray] = {}

        def add(names: tuple[str, ...], selected: np.ndarray) -> None:
            if selected.any():
                for name in names:
                    planes[name] = planes[name] | selected if name in planes else selected

        if _at_least(version, self.codes_since):
            codes = dict(self.codes)
            if not _at_least(version, self.cosmic_ray_codes_since):
                # Before this version CR and streak codes were confused.
                codes = {code: names for code, names in codes.items() if "COSMIC_RAY" not in names}
            saturated_code = next((c for c, names in codes.items() if names == ("SATURATED",)), None)
            ring = np.zeros(dq.shape, dtype=bool)
            if self.saturated_ring and saturated_code is not None:
                ring = (dq == 1) & binary_dilation(dq == saturated_code)
            for code, names in codes.items():
                add(names, (dq == code) & ~ring)
            add(("SATURATED",), ring)
        else:
            for bit, names in self.bits.items():
                add(names, (dq & bit) != 0)
        return planes
