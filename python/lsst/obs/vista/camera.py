"""Camera descriptions read from policy YAML, turned into lsst-images detectors.

A camera description (``policy/<instrument>/camera.yaml``) is data: pixel
size, plate scale, detector shape, and per detector its name, serial, centre
in the focal plane, and nominal gain, read noise and saturation, each with
its published source.  This module only turns that data into
`lsst.images.cameras.Detector` objects and butler dimension records.
"""

from __future__ import annotations

__all__ = ("CameraDescription", "DetectorDescription", "FilterDescription", "read_camera")

import dataclasses
import math
from collections.abc import Mapping
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import yaml

from lsst.images import Box

# The one private import: lsst-images keeps CameraFrameSet's constructor private (it takes an AST
# FrameSet of its astshim/starlink-pyast bridge) and has no public factory from frames and mappings.
# Needs upstream: a public CameraFrameSet factory (or a public export of lsst.images' AST bridge).
from lsst.images._transforms import _ast as ast
from lsst.images.cameras import (
    Amplifier,
    AmplifierCalibrations,
    CameraFrameSet,
    Detector,
    DetectorAttributes,
    DetectorType,
    Orientation,
    ReadoutCorner,
)


@dataclasses.dataclass(frozen=True)
class FilterDescription:
    """A physical filter and the band it belongs to."""

    physical_filter: str
    """Butler name of the physical filter, e.g. ``VIRCAM-Ks``."""

    band: str
    """Band name shared across instruments, e.g. ``Ks``."""

    header_name: str
    """Value of the filter keyword in the instrument's FITS headers."""


@dataclasses.dataclass(frozen=True)
class DetectorDescription:
    """Nominal properties of one detector."""

    id: int
    name: str
    serial: str
    focal_plane_x: float
    """Focal-plane x of the detector centre (mm)."""
    focal_plane_y: float
    """Focal-plane y of the detector centre (mm)."""
    gain: float
    """Nominal gain (e-/ADU)."""
    read_noise: float
    """Nominal read noise (e-)."""
    saturation: float
    """Level (ADU, single exposure) above which pixels are saturated."""
    yaw_degrees: float = 0.0
    """Rotation of the pixel grid in the focal plane."""


@dataclasses.dataclass(frozen=True)
class CameraDescription:
    """A camera: its geometry, detectors and filters, as read from YAML."""

    instrument: str
    pixel_size: float
    """Pixel pitch in focal-plane units (mm)."""
    plate_scale: float
    """Nominal plate scale (arcsec/pixel)."""
    detector_shape: tuple[int, int]
    """Nominal ``(ny, nx)`` of a detector's science region."""
    physical_type: str
    detectors: Mapping[int, DetectorDescription]
    filters: Mapping[str, FilterDescription]
    """Filters keyed by butler physical filter name."""

    @classmethod
    def from_yaml(cls, path: str | Path) -> CameraDescription:
        """Read a camera description from a policy YAML file.

        Parameters
        ----------
        path : `str` or `pathlib.Path`
            The YAML file.

        Returns
        -------
        camera : `CameraDescription`
            The description.
        """
        with open(path) as stream:
            data: dict[str, Any] = yaml.safe_load(stream)
        detectors = {
            int(detector_id): DetectorDescription(id=int(detector_id), **fields)
            for detector_id, fields in data["detectors"].items()
        }
        filters = {entry["physical_filter"]: FilterDescription(**entry) for entry in data["filters"]}
        return cls(
            instrument=data["instrument"],
            pixel_size=float(data["pixel_size"]),
            plate_scale=float(data["plate_scale"]),
            detector_shape=tuple(data["detector_shape"]),
            physical_type=data["physical_type"],
            detectors=detectors,
            filters=filters,
        )

    @cached_property
    def detector_names(self) -> Mapping[int, str]:
        """Detector names keyed by detector ID."""
        return {detector_id: d.name for detector_id, d in self.detectors.items()}

    @cached_property
    def filters_by_header_name(self) -> Mapping[str, FilterDescription]:
        """Filters keyed by the value written in FITS headers."""
        return {f.header_name: f for f in self.filters.values()}

    @property
    def focal_length(self) -> float:
        """Effective focal length (mm) implied by pixel size and plate scale."""
        radians_per_pixel = math.radians(self.plate_scale / 3600.0)
        return self.pixel_size / radians_per_pixel

    def make_detector(
        self, detector_id: int, bbox: Box | None = None, visit: int | None = None, *, subsampling: int = 1
    ) -> Detector:
        """Return an `lsst.images.cameras.Detector` for one detector.

        Parameters
        ----------
        detector_id : `int`
            Detector ID.
        bbox : `lsst.images.Box`, optional
            Pixel bounding box of the image this detector describes.
            Reduced products (jittered stacks, cutouts) are not the nominal
            detector size; their grid is taken to be centred on the physical
            detector, which is exact for a stack made from symmetric jitter
            offsets and good to the jitter amplitude otherwise.  Defaults to
            the nominal ``detector_shape``.
        visit : `int`, optional
            Visit whose frames the detector refers to.
        subsampling : `int`, optional
            Image pixels per detector pixel along each axis: 2 for a stack
            interleaved from 2x2 microsteps (WFCAM's NUSTEP = 4), whose
            pixels are half the detector's pitch.

        Returns
        -------
        detector : `lsst.images.cameras.Detector`
            The detector with a camera frame set holding its pixel, focal
            plane and field angle frames.
        """
        description = self.detectors[detector_id]
        if bbox is None:
            bbox = Box.from_shape(self.detector_shape)
        frames = CameraFrameSet(self.instrument, self._make_frame_set(description, bbox, subsampling))
        attributes = DetectorAttributes(
            name=description.name,
            id=description.id,
            type=DetectorType.SCIENCE,
            serial=description.serial,
            bbox=bbox,
            orientation=Orientation(
                focal_plane_x=description.focal_plane_x,
                focal_plane_y=description.focal_plane_y,
                focal_plane_z=0.0,
                pixel_reference_x=self._pixel_centre(bbox)[0],
                pixel_reference_y=self._pixel_centre(bbox)[1],
                yaw=description.yaw_degrees * u.deg,
            ),
            pixel_size=self.pixel_size / subsampling,
            physical_type=self.physical_type,
        )
        amplifier = Amplifier(
            name="A",
            bbox=bbox,
            readout_corner=ReadoutCorner.LL,
            nominal_calibrations=AmplifierCalibrations(
                gain=description.gain,
                read_noise=description.read_noise,
                saturation=description.saturation,
                suspect_level=math.nan,
                linearity_coefficients=np.zeros(0),
                linearity_type="None",
            ),
        )
        return Detector(attributes, [amplifier], frames, visit=visit)

    @staticmethod
    def _pixel_centre(bbox: Box) -> tuple[float, float]:
        return (
            0.5 * (bbox.x.start + bbox.x.stop - 1),
            0.5 * (bbox.y.start + bbox.y.stop - 1),
        )

    def _make_frame_set(
        self, description: DetectorDescription, bbox: Box, subsampling: int = 1
    ) -> ast.FrameSet:
        """Build the AST frame set FOCAL_PLANE <-> FIELD_ANGLE, DETECTOR_n."""
        frame_set = ast.FrameSet(ast.Frame(2, "Ident=FOCAL_PLANE,Domain=FOCAL_PLANE,Unit(1)=mm,Unit(2)=mm"))
        field_angle = ast.Frame(2, "Ident=FIELD_ANGLE,Domain=FIELD_ANGLE,Unit(1)=rad,Unit(2)=rad")
        frame_set.addFrame(ast.FrameSet.BASE, ast.ZoomMap(2, 1.0 / self.focal_length), field_angle)

        # pixel = R(-yaw) (fp - centre) * subsampling / pixel_size + pixel_centre
        yaw = math.radians(description.yaw_degrees)
        rotation = np.array([[math.cos(yaw), math.sin(yaw)], [-math.sin(yaw), math.cos(yaw)]])
        centre_x, centre_y = self._pixel_centre(bbox)
        to_pixels = ast.CmpMap(
            ast.CmpMap(
                ast.ShiftMap([-description.focal_plane_x, -description.focal_plane_y]),
                ast.MatrixMap(rotation * subsampling / self.pixel_size),
                True,
            ),
            ast.ShiftMap([centre_x, centre_y]),
            True,
        )
        pixels = ast.Frame(
            2,
            f"Ident=DETECTOR_{description.id},Domain=PIXELS,"
            f"Bottom(1)={bbox.x.start},Top(1)={bbox.x.stop},"
            f"Bottom(2)={bbox.y.start},Top(2)={bbox.y.stop}",
        )
        frame_set.addFrame(ast.FrameSet.BASE, to_pixels, pixels)
        return frame_set


@cache
def read_camera(path: Path) -> CameraDescription:
    """Return the camera description of a policy YAML file, read once per
    process; the one reader of ``camera.yaml`` (instruments and ingest
    policies use it).

    Parameters
    ----------
    path : `pathlib.Path`
        The YAML file.

    Returns
    -------
    camera : `CameraDescription`
        The description.
    """
    return CameraDescription.from_yaml(path)
