"""Tracts and patches of a skymap: tract WCS, pixel boxes, patch grids and
sky regions, for the rings and discrete geometries.

Conventions
    Pixel centres are at integer coordinates, pixel ``i`` spanning
    ``i - 0.5`` to ``i + 0.5``; boxes are `lsst.images.Box` (``y`` then
    ``x``, stop exclusive).  Angles given to and returned by the public
    methods are in degrees.
"""

from __future__ import annotations

__all__ = ("DiscreteSkyMap", "PatchInfo", "RingsSkyMap", "SkyMap", "TractInfo", "make_skymap")

import abc
import dataclasses
import functools
import hashlib
import math
import struct
from collections.abc import Iterator

import astropy.wcs
import numpy as np

from lsst.images import YX, Box, Interval, SkyProjection, TractFrame
from lsst.images.cells import CellGrid, PatchDefinition
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

from .config import DiscreteSkyMapConfig, RegisterSkyMapConfig, RingsSkyMapConfig

_ROTATION_DEG = 0.0
"""Rotation of every tract WCS (none); packed into the hash as the skymap's
``rotation`` parameter."""


@dataclasses.dataclass(frozen=True)
class PatchInfo:
    """One patch of a tract."""

    id: int
    """Sequential ID within the tract, ``y * nx + x``."""

    index: tuple[int, int]
    """Position (x, y) in the tract's grid of patches."""

    inner_bbox: Box
    """Pixels the patch owns: the inner boxes of a tract tile it."""

    outer_bbox: Box
    """Pixels the patch covers: the inner box grown by the patch border."""


def _grown_to_multiple(start: int, stop: int, multiple: int) -> tuple[int, int]:
    """Grow ``[start, stop)`` to a whole number of ``multiple``, the growth
    split evenly and its odd pixel on the high side."""
    size = stop - start
    growth = -size % multiple
    return start - growth // 2, stop + growth - growth // 2


def _pixel_of(coordinate: float) -> int:
    """Return the pixel holding a coordinate (pixel ``i`` spans ``i - 0.5``
    to ``i + 0.5``)."""
    return math.floor(coordinate + 0.5)


def _polygon(wcs: astropy.wcs.WCS, x: np.ndarray, y: np.ndarray) -> list[ConvexPolygon]:
    """Return the sky polygons of pixel quadrilaterals.

    ``x`` and ``y`` have shape (n, 4): the corners of ``n`` boxes, in order
    around each box.
    """
    ra, dec = wcs.wcs_pix2world(x.ravel(), y.ravel(), 0)
    ra, dec = np.radians(ra), np.radians(dec)
    cos_dec = np.cos(dec)
    xyz = np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1).reshape(-1, 4, 3)
    return [ConvexPolygon([UnitVector3d(*corner) for corner in corners]) for corners in xyz.tolist()]


def _box_corners(boxes: list[Box]) -> tuple[np.ndarray, np.ndarray]:
    """Return the outer pixel-edge corners of boxes, (n, 4) arrays of x and y."""
    x0 = np.array([b.x.start for b in boxes], dtype=float) - 0.5
    x1 = np.array([b.x.stop for b in boxes], dtype=float) - 0.5
    y0 = np.array([b.y.start for b in boxes], dtype=float) - 0.5
    y1 = np.array([b.y.stop for b in boxes], dtype=float) - 0.5
    return np.stack([x0, x1, x1, x0], axis=1), np.stack([y0, y0, y1, y1], axis=1)


class TractInfo:
    """One tract: its WCS, pixel box and patches.

    Parameters
    ----------
    id : `int`
        Tract ID.
    ra, dec : `float`
        Tract centre, degrees.
    radius : `float`
        Angular distance, degrees, from the centre to the N, E, S and W
        points the pixel box must hold (the tract's share of the sky plus
        the overlap).
    config : `RingsSkyMapConfig` or `DiscreteSkyMapConfig`
        Projection, pixel scale and tract builder.
    """

    def __init__(
        self, id: int, ra: float, dec: float, radius: float, config: RingsSkyMapConfig | DiscreteSkyMapConfig
    ) -> None:
        self.id = id
        self.ra = ra % 360.0
        self.dec = dec
        self.radius = radius
        builder = config.tractBuilder.active
        self.patch_inner_dimensions = builder.patch_inner_dimensions()
        self.patch_border = builder.patch_border()
        self._clip_outer = builder.clips_outer_to_tract()
        self._cell_shape = (
            YX(y=builder.cellInnerDimensions[1], x=builder.cellInnerDimensions[0])
            if config.tractBuilder.name == "cells"
            else None
        )
        scale = config.pixelScale / 3600.0
        distance = _zenithal_distance(config.projection, radius) / scale
        # The N, E, S and W points, centre at pixel (0, 0) before the shift.
        points_x, points_y = (0.0, -distance, 0.0, distance), (distance, 0.0, -distance, 0.0)
        x_start, x_stop = _grown_to_multiple(
            min(map(_pixel_of, points_x)), max(map(_pixel_of, points_x)) + 1, self.patch_inner_dimensions[0]
        )
        y_start, y_stop = _grown_to_multiple(
            min(map(_pixel_of, points_y)), max(map(_pixel_of, points_y)) + 1, self.patch_inner_dimensions[1]
        )
        self.bbox = Box(y=Interval(0, y_stop - y_start), x=Interval(0, x_stop - x_start))
        self.num_patches = (
            self.bbox.x.size // self.patch_inner_dimensions[0],
            self.bbox.y.size // self.patch_inner_dimensions[1],
        )
        wcs = astropy.wcs.WCS(naxis=2)
        wcs.wcs.ctype = [f"RA---{config.projection}", f"DEC--{config.projection}"]
        wcs.wcs.cunit = ["deg", "deg"]
        wcs.wcs.radesys = "ICRS"
        wcs.wcs.crval = [self.ra, dec]
        # FITS pixels are 1-based.
        wcs.wcs.crpix = [1.0 - x_start, 1.0 - y_start]
        wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
        wcs.wcs.set()
        self.wcs = wcs
        """The tract WCS (`astropy.wcs.WCS`; use origin 0 for this module's
        pixel convention)."""

    def __repr__(self) -> str:
        return f"TractInfo(id={self.id}, centre=({self.ra:.6f}, {self.dec:.6f}), bbox={self.bbox})"

    @property
    def center_pixel(self) -> tuple[float, float]:
        """Pixel (x, y) of the tract centre."""
        return (self.wcs.wcs.crpix[0] - 1.0, self.wcs.wcs.crpix[1] - 1.0)

    def sky_to_pixel(self, ra: np.ndarray | float, dec: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Return the pixel coordinates (x, y) of sky positions (degrees)."""
        x, y = self.wcs.wcs_world2pix(np.atleast_1d(ra), np.atleast_1d(dec), 0)
        return x, y

    def contains(self, ra: float, dec: float) -> bool:
        """Return whether a sky position (degrees) lies in the pixel box,
        on the tract's side of the sky."""
        if _angular_distance(self.ra, self.dec, ra, dec) >= 90.0:
            return False
        x, y = self.sky_to_pixel(ra, dec)
        return bool(-0.5 <= x[0] < self.bbox.x.stop - 0.5 and -0.5 <= y[0] < self.bbox.y.stop - 0.5)

    def patch_index_of_id(self, patch_id: int) -> tuple[int, int]:
        """Return the grid index (x, y) of a sequential patch ID."""
        nx, ny = self.num_patches
        if not 0 <= patch_id < nx * ny:
            raise LookupError(f"tract {self.id} has no patch {patch_id} (it has {nx * ny})")
        return (patch_id % nx, patch_id // nx)

    def patch_id_of_index(self, x: int, y: int) -> int:
        """Return the sequential patch ID of a grid index (x, y)."""
        nx, ny = self.num_patches
        if not (0 <= x < nx and 0 <= y < ny):
            raise LookupError(f"tract {self.id} has no patch ({x}, {y}) (its grid is {nx}x{ny})")
        return y * nx + x

    def patch(self, patch_id: int) -> PatchInfo:
        """Return a patch by sequential ID."""
        x, y = self.patch_index_of_id(patch_id)
        px, py = self.patch_inner_dimensions
        inner = Box(y=Interval(y * py, (y + 1) * py), x=Interval(x * px, (x + 1) * px))
        outer = inner.padded(self.patch_border)
        if self._clip_outer:
            outer = outer.intersection(self.bbox)
        return PatchInfo(id=patch_id, index=(x, y), inner_bbox=inner, outer_bbox=outer)

    def patches(self) -> Iterator[PatchInfo]:
        """Iterate over the patches in ID order."""
        nx, ny = self.num_patches
        for patch_id in range(nx * ny):
            yield self.patch(patch_id)

    def find_patch(self, ra: float, dec: float) -> PatchInfo:
        """Return the patch whose inner box holds a sky position (degrees)
        of this tract (a position past the box edge gets the edge patch)."""
        x, y = self.sky_to_pixel(ra, dec)
        nx, ny = self.num_patches
        ix = min(max(_pixel_of(float(x[0])) // self.patch_inner_dimensions[0], 0), nx - 1)
        iy = min(max(_pixel_of(float(y[0])) // self.patch_inner_dimensions[1], 0), ny - 1)
        return self.patch(self.patch_id_of_index(ix, iy))

    def region(self) -> ConvexPolygon:
        """Return the sky polygon of the tract's pixel box (outer pixel edges)."""
        return _polygon(self.wcs, *_box_corners([self.bbox]))[0]

    def patch_regions(self) -> list[ConvexPolygon]:
        """Return the sky polygons of the patches' outer boxes, in ID order."""
        return _polygon(self.wcs, *_box_corners([patch.outer_bbox for patch in self.patches()]))

    def sky_projection(self, skymap_name: str) -> SkyProjection[TractFrame]:
        """Return the tract WCS as an `lsst.images.SkyProjection` in the
        tract's pixel frame."""
        frame = TractFrame(skymap=skymap_name, tract=self.id, bbox=self.bbox)
        return SkyProjection.from_fits_wcs(self.wcs, frame, pixel_bounds=self.bbox)

    def patch_definition(self, patch_id: int, legacy_cell_size: int | None = None) -> PatchDefinition:
        """Return a patch as an `lsst.images.PatchDefinition`.

        Parameters
        ----------
        patch_id : `int`
            Sequential patch ID.
        legacy_cell_size : `int`, optional
            Side (pixels) of the cells laid over a patch of a legacy tract
            builder, which has none: from the outer box's lower-left corner,
            the grid grown on the high sides to whole cells.  Ignored for
            the cells tract builder, whose outer box is whole cells.

        Raises
        ------
        TypeError
            Raised for a legacy tract builder without ``legacy_cell_size``.
        """
        patch = self.patch(patch_id)
        if self._cell_shape is not None:
            cell_shape, grid_box = self._cell_shape, patch.outer_bbox
        elif legacy_cell_size is None:
            raise TypeError(f"tract {self.id}: a legacy tract builder has no cell grid; give a cell size")
        else:
            cell_shape = YX(y=legacy_cell_size, x=legacy_cell_size)
            outer = patch.outer_bbox
            grid_box = Box(
                y=Interval(
                    outer.y.start, outer.y.start + -(-outer.y.size // legacy_cell_size) * legacy_cell_size
                ),
                x=Interval(
                    outer.x.start, outer.x.start + -(-outer.x.size // legacy_cell_size) * legacy_cell_size
                ),
            )
        return PatchDefinition(
            id=patch.id,
            index=YX(y=patch.index[1], x=patch.index[0]),
            inner_bbox=patch.inner_bbox,
            cells=CellGrid(bbox=grid_box, cell_shape=cell_shape),
        )


@functools.cache
def _zenithal_distance(projection: str, radius: float) -> float:
    """Return the projected distance, degrees at unit scale, of a point
    ``radius`` degrees from the centre of a zenithal projection."""
    wcs = astropy.wcs.WCS(naxis=2)
    wcs.wcs.ctype = [f"RA---{projection}", f"DEC--{projection}"]
    wcs.wcs.crval = [0.0, 90.0]
    wcs.wcs.crpix = [1.0, 1.0]
    wcs.wcs.set()
    x, y = wcs.wcs_world2pix([0.0], [90.0 - radius], 0)
    return float(math.hypot(x[0], y[0]))


def _angular_distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Return the angle, degrees, between two sky positions (degrees)."""
    a = UnitVector3d(LonLat.fromDegrees(ra1, dec1))
    b = UnitVector3d(LonLat.fromDegrees(ra2, dec2))
    # atan2 of the cross and dot products: accurate at every angle.
    return math.degrees(math.atan2(a.cross(b).getNorm(), a.dot(b)))


def _tract_hash(class_name: str, config: RingsSkyMapConfig | DiscreteSkyMapConfig) -> hashlib._Hash:
    """Start a skymap's SHA-1 with its class name and tract builder."""
    integers = config.tractBuilder.active.hash_integers()
    sha = hashlib.sha1(class_name.encode("ascii"))
    sha.update(
        struct.pack(
            "<" + "i" * len(integers) + "dd3sd",
            *integers,
            config.tractOverlap,
            config.pixelScale,
            config.projection.encode("ascii"),
            _ROTATION_DEG,
        )
    )
    return sha


class SkyMap(abc.ABC):
    """Tracts of a skymap, by ID; the geometry shared by its kinds."""

    config: RingsSkyMapConfig | DiscreteSkyMapConfig
    """The geometry's config."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Return the number of tracts (tract IDs are 0 to len - 1)."""

    @abc.abstractmethod
    def tract_center(self, tract_id: int) -> tuple[float, float]:
        """Return the centre (RA, Dec), degrees, of a tract."""

    @abc.abstractmethod
    def _tract_radius(self, tract_id: int) -> float:
        """Return the angular distance, degrees, from a tract's centre to the
        N, E, S and W points its pixel box holds."""

    @abc.abstractmethod
    def find_tract_id(self, ra: float, dec: float) -> int | None:
        """Return the ID of the tract a sky position (degrees) belongs to."""

    @abc.abstractmethod
    def hash(self) -> bytes:
        """Return the SHA-1 digest of the geometry's parameters."""

    def __iter__(self) -> Iterator[TractInfo]:
        for tract_id in range(len(self)):
            yield self[tract_id]

    def __getitem__(self, tract_id: int) -> TractInfo:
        if not 0 <= tract_id < len(self):
            raise LookupError(f"no tract {tract_id} in this skymap (tract IDs are 0 to {len(self) - 1})")
        ra, dec = self.tract_center(tract_id)
        return TractInfo(tract_id, ra, dec, self._tract_radius(tract_id), self.config)

    def find_tract(self, ra: float, dec: float) -> TractInfo | None:
        """Return the tract a sky position (degrees) belongs to."""
        tract_id = self.find_tract_id(ra, dec)
        return None if tract_id is None else self[tract_id]


class RingsSkyMap(SkyMap):
    """The whole sky in rings of constant declination, each cut into
    tracts, and one tract on each pole.

    Ring ``i`` (0 to N - 1, south to north) of height ``r = π/(N + 1)``
    spans declinations ``-π/2 + (i + 0.5) r`` to ``-π/2 + (i + 1.5) r`` and
    holds ``⌊2π cos(dᵢ)/r⌋ + 1`` tracts, ``dᵢ`` the smaller |declination| of
    its edges.  Tract 0 is the south polar cap, then ring 0's tracts
    eastwards from ``raStart``, each ring north in turn, and last the north
    polar cap.

    Parameters
    ----------
    config : `RingsSkyMapConfig`
        The geometry.
    """

    def __init__(self, config: RingsSkyMapConfig) -> None:
        config.validate()
        self.config = config
        self.ring_size = math.pi / (config.numRings + 1)
        self._ra_start = math.radians(config.raStart)
        self.ring_tract_counts = []
        for ring in range(config.numRings):
            start = -math.pi / 2 + (ring + 0.5) * self.ring_size
            stop = -math.pi / 2 + (ring + 1.5) * self.ring_size
            nearest_equator = min(abs(start), abs(stop))
            self.ring_tract_counts.append(int(2 * math.pi * math.cos(nearest_equator) / self.ring_size) + 1)
        # ID of each ring's first tract (after the south cap, tract 0).
        self._ring_first_id = np.concatenate([[1], 1 + np.cumsum(self.ring_tract_counts)]).tolist()

    def __len__(self) -> int:
        return self._ring_first_id[-1] + 1

    def ring_of_tract(self, tract_id: int) -> tuple[int, int] | None:
        """Return (ring, index in ring) of a tract, `None` for a polar cap."""
        if tract_id in (0, len(self) - 1):
            return None
        ring = int(np.searchsorted(self._ring_first_id, tract_id, side="right")) - 1
        return ring, tract_id - self._ring_first_id[ring]

    def tract_center(self, tract_id: int) -> tuple[float, float]:
        if tract_id == 0:
            return (self.config.raStart % 360.0, -90.0)
        if tract_id == len(self) - 1:
            return (self.config.raStart % 360.0, 90.0)
        ring, index = self.ring_of_tract(tract_id)
        ra = self._ra_start + 2 * math.pi * index / self.ring_tract_counts[ring]
        dec = -math.pi / 2 + (ring + 1) * self.ring_size
        return (math.degrees(ra) % 360.0, math.degrees(dec))

    def _tract_radius(self, tract_id: int) -> float:
        # Ring tracts and the caps alike: half a ring height plus the overlap
        # (a cap reaches the edge of the nearest ring, r/2 from its pole).
        return math.degrees(self.ring_size / 2) + self.config.tractOverlap

    def find_tract_id(self, ra: float, dec: float) -> int:
        ring = math.floor((math.radians(dec) - (self.ring_size / 2 - math.pi / 2)) / self.ring_size)
        if ring < 0:
            return 0
        if ring >= self.config.numRings:
            return len(self) - 1
        count = self.ring_tract_counts[ring]
        offset = (math.radians(ra) - self._ra_start) % (2 * math.pi)
        index = math.floor(offset / (2 * math.pi / count) + 0.5) % count
        return self._ring_first_id[ring] + index

    def hash(self) -> bytes:
        sha = _tract_hash("RingsSkyMap", self.config)
        sha.update(struct.pack("<id", self.config.numRings, self.config.raStart))
        return sha.digest()


class DiscreteSkyMap(SkyMap):
    """Tracts around given centres, numbered in the order given.

    Parameters
    ----------
    config : `DiscreteSkyMapConfig`
        The tract centres and radii and their shared geometry.
    """

    def __init__(self, config: DiscreteSkyMapConfig) -> None:
        config.validate()
        self.config = config

    def __len__(self) -> int:
        return len(self.config.raList)

    def tract_center(self, tract_id: int) -> tuple[float, float]:
        return (self.config.raList[tract_id] % 360.0, self.config.decList[tract_id])

    def _tract_radius(self, tract_id: int) -> float:
        return self.config.radiusList[tract_id] + self.config.tractOverlap

    @functools.cached_property
    def _tracts(self) -> list[TractInfo]:
        """The tracts, built once: `find_tract_id` tries each of them for
        every position (an object table asks for each of its objects)."""
        return list(self)

    def find_tract_id(self, ra: float, dec: float) -> int | None:
        """Return the ID of the tract with the nearest centre among those
        whose pixel box holds the position, `None` if none does."""
        holding = [tract for tract in self._tracts if tract.contains(ra, dec)]
        if not holding:
            return None
        return min(holding, key=lambda t: _angular_distance(t.ra, t.dec, ra, dec)).id

    def hash(self) -> bytes:
        sha = _tract_hash("DiscreteSkyMap", self.config)
        for ra, dec, radius in zip(
            self.config.raList, self.config.decList, self.config.radiusList, strict=True
        ):
            sha.update(struct.pack("<ddd", ra, dec, radius))
        return sha.digest()


def make_skymap(config: RegisterSkyMapConfig | RingsSkyMapConfig | DiscreteSkyMapConfig) -> SkyMap:
    """Return the skymap a config describes: a registered skymap's config
    (the ``skyMap`` dataset) or a geometry config."""
    if isinstance(config, RegisterSkyMapConfig):
        config = config.skyMap.active
    if isinstance(config, RingsSkyMapConfig):
        return RingsSkyMap(config)
    return DiscreteSkyMap(config)
