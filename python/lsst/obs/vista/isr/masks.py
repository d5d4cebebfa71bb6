"""Mask planes of an assembled exposure and the rules that set them."""

from __future__ import annotations

__all__ = (
    "LOW_CONFIDENCE",
    "PixelMaskConfig",
    "QualityMaskConfig",
    "QualityMaskTask",
    "make_mask_schema",
    "mask_pixels",
    "planes_set",
    "set_plane",
    "set_planes",
    "unflagged",
)

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

import lsst.pex.config as pexConfig
from lsst.images import Mask, MaskPlane, MaskSchema, get_legacy_visit_image_mask_planes
from lsst.pipe.base import Task

LOW_CONFIDENCE = MaskPlane(
    "LOW_CONFIDENCE",
    "Relative depth (confidence / 100, or weight / median weight) below the configured threshold, "
    "but above zero; such pixels are also BAD.",
)
"""Says why a pixel is BAD when its depth, not a defect, is the reason."""


def make_mask_schema(extra_planes: Iterable[MaskPlane] = ()) -> MaskSchema:
    """Return the mask schema of an assembled exposure.

    Parameters
    ----------
    extra_planes : `~collections.abc.Iterable` [`lsst.images.MaskPlane`]
        Planes beyond the standard ones, e.g. from a `QualityMaskTask`.

    Returns
    -------
    schema : `lsst.images.MaskSchema`
        The planes of an LSST visit image (as lsst-images maps the legacy
        names: ``SAT`` is ``SATURATED``, ``INTRP`` ``INTERPOLATED`` ...), then
        `LOW_CONFIDENCE`, then ``extra_planes`` not already present, so that
        downstream tasks find every plane they expect.
    """
    planes = list(get_legacy_visit_image_mask_planes().values())
    names = {plane.name for plane in planes}
    for plane in (LOW_CONFIDENCE, *extra_planes):
        if plane.name not in names:
            planes.append(plane)
            names.add(plane.name)
    return MaskSchema(planes)


class PixelMaskConfig(pexConfig.Config):
    """Rules that mask pixels from the image, its depth and saturation."""

    lowConfidenceThreshold = pexConfig.Field[float](
        doc=(
            "Pixels whose relative depth (the variance model's relative weight), in percent of nominal, "
            "is above zero but below this are BAD and LOW_CONFIDENCE.  Zero (the default) disables the "
            "rule: whether a shallow pixel is bad depends on what the noise map means."
        ),
        default=0.0,
        check=lambda value: 0.0 <= value <= 100.0,
    )
    noDataValues = pexConfig.ListField[float](
        doc="Pixel values that mean 'no data' (NO_DATA), in addition to NaN and infinities.",
        default=[],
    )
    doSaturation = pexConfig.Field[bool](
        doc="Mask pixels near or above the image's saturation level as SATURATED.",
        default=True,
    )
    saturationMargin = pexConfig.Field[float](
        doc=(
            "Pixels at or above this fraction of the saturation level (divided by the relative depth where "
            "that exceeds 1) are SATURATED.  Below 1 for images that average exposures, where a partly "
            "saturated pixel stays below the level: a mean reaches a value only if one of its inputs did."
        ),
        default=1.0,
        check=lambda value: 0.0 < value <= 1.0,
    )
    saturationGrow = pexConfig.Field[int](
        doc=(
            "SATURATED is grown by this many pixels (square): in resampled images, for the neighbours that "
            "resampling mixed with saturated pixels."
        ),
        default=0,
        check=lambda value: value >= 0,
    )


def set_plane(mask: Mask, plane: str, pixels: np.ndarray) -> None:
    """Set a plane where ``pixels`` is `True`, as `lsst.images.Mask.set`.

    Parameters
    ----------
    mask : `lsst.images.Mask`
        Mask to update in place.
    plane : `str`
        Plane name.
    pixels : `numpy.ndarray` [`bool`]
        Where to set it (shape of the mask's bounding box).
    """
    set_planes(mask, {plane: pixels})


def set_planes(mask: Mask, planes: Mapping[str, np.ndarray]) -> None:
    """Set several planes, each where its array is `True`.

    Parameters
    ----------
    mask : `lsst.images.Mask`
        Mask to update in place.
    planes : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Boolean arrays (shape of the mask's bounding box) by plane name.

    Notes
    -----
    The mask stores its planes as bits of interleaved bytes.  Each distinct
    array is multiplied by the bits of all its planes into a contiguous
    buffer, which is ORed into the mask as one word per pixel (or, if a
    pixel is not 1, 2, 4 or 8 bytes, into each byte layer it touches):
    whole-array operations, several times faster than the boolean indexing
    of ``Mask.set`` on a full detector.
    """
    values: dict[int, tuple[np.ndarray, int]] = {}
    for plane, pixels in planes.items():
        bit = mask.schema.bit(plane)
        shifted = int(bit.mask) << (8 * bit.index)
        pixels_seen, value = values.get(id(pixels), (pixels, 0))
        values[id(pixels)] = (pixels_seen, value | shifted)
    words = _pixel_words(mask)
    target = words if words is not None else mask.array[..., 0]
    buffer = np.empty(target.shape, dtype=target.dtype)
    for pixels, value in values.values():
        flags = np.ascontiguousarray(pixels, dtype=bool).view(np.uint8)
        if words is not None:
            np.multiply(flags, words.dtype.type(value), out=buffer)
            words |= buffer
            continue
        for index in range(mask.array.shape[-1]):
            byte = (value >> (8 * index)) & 0xFF
            if byte:
                np.multiply(flags, np.uint8(byte), out=buffer)
                layer = mask.array[..., index]
                layer |= buffer


def planes_set(array: np.ndarray, schema: MaskSchema, planes: Iterable[str]) -> np.ndarray:
    """Return where any of the given planes is set.

    Parameters
    ----------
    array : `numpy.ndarray`
        Mask words, ``(..., n)`` as `lsst.images.Mask.array` or a slice of it.
    schema : `lsst.images.MaskSchema`
        The mask's schema.
    planes : iterable [`str`]
        Plane names (all in ``schema``).

    Returns
    -------
    set : `numpy.ndarray` [`bool`]
        `True` where at least one of ``planes`` is set.
    """
    bitmask = schema.bitmask(*planes)
    n = array.shape[-1]
    if array.dtype == np.uint8 and n in (1, 2, 4, 8) and array.flags.c_contiguous:
        # One word per pixel: a single AND instead of a reduction over the bytes.
        word = np.ascontiguousarray(bitmask, dtype=np.uint8).view(f"<u{n}")[0]
        return (array.view(f"<u{n}")[..., 0] & word) != 0
    return np.any(array & bitmask, axis=-1)


def unflagged(mask: Mask) -> np.ndarray:
    """Return the pixels of a mask with no plane set.

    Parameters
    ----------
    mask : `lsst.images.Mask`
        The mask.

    Returns
    -------
    clear : `numpy.ndarray` [`bool`]
        `True` where every bit is zero.
    """
    words = _pixel_words(mask)
    return words == 0 if words is not None else ~mask.array.any(axis=-1)


def _pixel_words(mask: Mask) -> np.ndarray | None:
    """The mask as one little-endian unsigned word per pixel (byte ``i`` of
    the pixel is bits ``8 i`` to ``8 i + 7``), if its layout allows."""
    layers = mask.array
    if layers.shape[-1] not in (1, 2, 4, 8) or not layers.flags.c_contiguous:
        return None
    return layers.view(f"<u{layers.shape[-1]}")[..., 0]


def mask_pixels(
    mask: Mask,
    image: np.ndarray,
    config: PixelMaskConfig,
    *,
    relative_weight: np.ndarray | None,
    saturation_level: float | None,
) -> np.ndarray:
    """Set NO_DATA, BAD, LOW_CONFIDENCE and SATURATED from the image, its
    relative depth and its saturation level.

    Parameters
    ----------
    mask : `lsst.images.Mask`
        Mask to update in place (schema from `make_mask_schema`).
    image : `numpy.ndarray`
        The image as read.
    config : `PixelMaskConfig`
        Thresholds and magic values.
    relative_weight : `numpy.ndarray` or `None`
        Relative inverse variance (1 = nominal depth), if a noise map exists.
    saturation_level : `float` or `None`
        Level (image units) at which an input exposure saturated, for a
        pixel of nominal depth.

    Returns
    -------
    no_data : `numpy.ndarray` [`bool`]
        Pixels set NO_DATA: non-finite, a configured magic value, or of zero
        (or negative) relative weight.

    Notes
    -----
    Saturation: a mean of exposures reaches a value only if at least one of
    them did, so a pixel above ``saturationMargin`` times the saturation
    level had an input near or at saturation, whatever the number of
    inputs.  Flat-fielding divides a saturated raw value by the flat, which
    the relative depth follows (a CASU confidence map is the normalised
    flat), so where the relative depth ``r`` exceeds 1 the threshold is
    divided by it.  Bilinear resampling mixes a saturated pixel into its
    neighbours, hence the growth by ``saturationGrow``.
    """
    # Built as "has data" with one scratch array, then inverted in place:
    # every full-size temporary costs a pass and fresh pages.
    no_data = np.isfinite(image)
    scratch = np.empty(image.shape, dtype=bool)
    for value in config.noDataValues:
        no_data &= np.not_equal(image, value, out=scratch)
    if relative_weight is not None:
        no_data &= np.greater(relative_weight, 0, out=scratch)
    np.logical_not(no_data, out=no_data)
    planes = {"NO_DATA": no_data}
    if relative_weight is not None and config.lowConfidenceThreshold > 0:
        low = np.less(relative_weight, np.float32(config.lowConfidenceThreshold / 100.0))
        low &= np.logical_not(no_data, out=scratch)
        planes["BAD"] = planes[LOW_CONFIDENCE.name] = low
    del scratch
    set_planes(mask, planes)
    if config.doSaturation and saturation_level is not None:
        ys, xs = _saturated(image, relative_weight, config, saturation_level)
        keep = ~no_data[ys, xs]
        bit = mask.schema.bit("SATURATED")
        mask.array[ys[keep], xs[keep], bit.index] |= bit.mask
    return no_data


def _saturated(
    image: np.ndarray, relative_weight: np.ndarray | None, config: PixelMaskConfig, saturation_level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return the indices ``(y, x)`` of the pixels at or above the
    saturation threshold (see `mask_pixels`), grown by ``saturationGrow``
    (a pixel may appear more than once).

    Saturated pixels are few: candidates are found with one comparison
    against the lowest threshold any pixel can have, and the depth-scaled
    rule is evaluated on them alone.
    """
    threshold = np.float32(config.saturationMargin * saturation_level)
    ceiling = np.float32(1.0)
    if relative_weight is not None:
        ceiling = max(ceiling, np.float32(np.nanmax(relative_weight)))
    with np.errstate(invalid="ignore"):
        candidates = image >= threshold / ceiling
    # numpy's nonzero scans a whole detector slowly; rows with a candidate
    # are found with a reduction, and only they are scanned.
    rows = np.flatnonzero(candidates.any(axis=1))
    in_rows, xs = np.nonzero(candidates[rows])
    ys = rows[in_rows]
    if relative_weight is not None:
        scale = np.maximum(relative_weight[ys, xs], np.float32(1.0))
        keep = image[ys, xs] * scale >= threshold
        ys, xs = ys[keep], xs[keep]
    ny, nx = image.shape
    size = config.saturationGrow
    offsets = np.arange(-size, size + 1)
    grown_y = np.clip(ys[:, None, None] + offsets[None, :, None], 0, ny - 1)
    grown_x = np.clip(xs[:, None, None] + offsets[None, None, :], 0, nx - 1)
    grown_y, grown_x = np.broadcast_arrays(grown_y, grown_x)
    return grown_y.ravel(), grown_x.ravel()


class QualityMaskConfig(pexConfig.Config):
    """Configuration for `QualityMaskTask`."""

    bitPlanes = pexConfig.DictField[int, str](
        doc="Mask plane set for each bit (0 = least significant) of the quality mask.",
        default={},
    )
    extraPlanes = pexConfig.DictField[str, str](
        doc="Planes (name: description) that bitPlanes uses beyond the standard visit-image planes.",
        default={},
    )


class QualityMaskTask(Task):
    """Decode a quality mask delivered with an image into mask planes.

    This decoder reads bit flags (``bitPlanes``); retarget it for products
    whose quality mask holds integer codes.
    """

    ConfigClass: ClassVar[type[pexConfig.Config]] = QualityMaskConfig
    config: QualityMaskConfig
    _DefaultName: ClassVar[str] = "qualityMask"

    @property
    def planes(self) -> list[MaskPlane]:
        """Planes this decoder needs beyond the standard ones."""
        return [MaskPlane(name, description) for name, description in self.config.extraPlanes.items()]

    def decode(self, quality: np.ndarray, metadata: Mapping[str, Any]) -> Mapping[str, np.ndarray]:
        """Return the pixels to set in each plane.

        Parameters
        ----------
        quality : `numpy.ndarray` [`int`]
            The quality mask as read.
        metadata : `~collections.abc.Mapping`
            Its header, for decoders whose convention depends on it (the
            DECam CP's PLVER); unused here.

        Returns
        -------
        planes : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
            Boolean arrays keyed by plane name.
        """
        result: dict[str, np.ndarray] = {}
        for bit, plane in self.config.bitPlanes.items():
            hit = (quality & (1 << bit)) != 0
            result[plane] = result[plane] | hit if plane in result else hit
        return result
