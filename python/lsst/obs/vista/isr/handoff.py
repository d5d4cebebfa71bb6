"""What isr hands calibrateImage beyond the exposure's components: the one
definition of the ``post_isr_image`` metadata entries that later tasks read."""

from __future__ import annotations

__all__ = ("IsrHandoff",)

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True)
class IsrHandoff:
    """isr's measurements and header values that calibrateImage (and the
    reports) need, stored in the exposure's metadata.

    `to_metadata` and `from_metadata` are the only places that name the
    metadata keys (`KEYS`), so stored ``post_isr_image`` datasets keep the
    keys they always had.
    """

    noise_ratio: float | None
    """Robust background noise over the noise the variance plane predicts,
    measured before any rescale; `None` if it could not be measured."""
    noise_ratio_pixels: int | None
    """Number of pixels the noise ratio was measured on."""
    variance_rescale: float
    """Factor isr multiplied the variance plane by (1 unless rescaled)."""
    no_data_variance: float | None
    """Variance given to NO_DATA pixels."""
    quantization_step: float | None
    """Step of pixel values stored as integers times BSCALE (CASU stacks),
    `None` for floating-point pixels; the step survives a lossy
    re-compression of the exposure only in this record."""
    zero_point_ab: float | None
    """AB magnitude of one image unit from the headers (the exposure's
    photometric scaling), `None` where the headers give none."""

    KEYS: ClassVar[Mapping[str, str]] = {
        "noise_ratio": "NOISE_RATIO",
        "noise_ratio_pixels": "NOISE_RATIO_NPIX",
        "variance_rescale": "VARIANCE_RESCALE",
        "no_data_variance": "NO_DATA_VARIANCE",
        "quantization_step": "QUANTIZATION_STEP",
        "zero_point_ab": "ZERO_POINT_AB",
    }
    """Metadata key of each field."""

    def to_metadata(self) -> dict[str, Any]:
        """Return the metadata entries of the hand-off (`KEYS`); a zero
        point that is `None` is left out, as isr always did."""
        entries = {key: getattr(self, field) for field, key in self.KEYS.items()}
        if self.zero_point_ab is None:
            del entries[self.KEYS["zero_point_ab"]]
        return entries

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> IsrHandoff:
        """Read the hand-off back from an exposure's metadata.

        Parameters
        ----------
        metadata : `~collections.abc.Mapping`
            Metadata of a ``post_isr_image`` (or of a later image that
            kept it); entries it lacks read as "not measured" (`None`, and
            no rescale).

        Returns
        -------
        handoff : `IsrHandoff`
            The hand-off.
        """

        def number(field: str) -> float | None:
            value = metadata.get(cls.KEYS[field])
            return None if value is None else float(value)

        rescale = number("variance_rescale")
        pixels = number("noise_ratio_pixels")
        return cls(
            noise_ratio=number("noise_ratio"),
            noise_ratio_pixels=None if pixels is None else int(pixels),
            variance_rescale=1.0 if rescale is None else rescale,
            no_data_variance=number("no_data_variance"),
            quantization_step=number("quantization_step"),
            zero_point_ab=number("zero_point_ab"),
        )

    @property
    def residual_noise_ratio(self) -> float | None:
        """Ratio of the measured background noise to the variance plane as
        isr left it (the noise ratio over the square root of the rescale),
        `None` if not measured."""
        if self.noise_ratio is None:
            return None
        return self.noise_ratio / math.sqrt(self.variance_rescale)
