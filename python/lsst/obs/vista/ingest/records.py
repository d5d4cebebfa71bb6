"""Dimension records of an exposure and its one-to-one visit, from the
translated header."""

from __future__ import annotations

__all__ = ("ONE_TO_ONE_VISIT_SYSTEM", "TRANSLATED_PROPERTIES", "ExposureRecords")

import dataclasses
from collections.abc import Mapping
from typing import Any

import astropy.time
import astropy.units as u
from astro_metadata_translator import ObservationInfo

from lsst.daf.butler import Timespan
from lsst.sphgeom import ConvexPolygon

TRANSLATED_PROPERTIES = frozenset(
    {
        "instrument",
        "exposure_id",
        "visit_id",
        "observation_id",
        "datetime_begin",
        "datetime_end",
        "exposure_time",
        "dark_time",
        "observation_type",
        "observation_reason",
        "observation_counter",
        "object",
        "science_program",
        "tracking_radec",
        "boresight_rotation_angle",
        "altaz_begin",
        "has_simulated_content",
        "can_see_sky",
        "physical_filter",
        "exposure_group",
        "observing_day",
        "observing_day_offset",
    }
)
"""The `ObservationInfo` properties the records are made of; the translation
is asked for these only, and fails if any is missing."""

ONE_TO_ONE_VISIT_SYSTEM = 0
"""ID of the visit system in which each exposure is its own visit (as
registered by `lsst.obs.vista.PolicyInstrument.register`)."""


@dataclasses.dataclass(frozen=True)
class ExposureRecords:
    """Field values of the records that describe one exposure.

    Built in the process that read the header (it is small and picklable);
    the regions are added by `with_regions` once the WCS of every detector
    is known.
    """

    instrument: str
    day_obs: dict[str, Any]
    group: dict[str, Any]
    exposure: dict[str, Any]
    visit: dict[str, Any]
    detector_regions: Mapping[int, ConvexPolygon] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_observation_info(cls, info: ObservationInfo) -> ExposureRecords:
        """Build the records of an exposure and of its one-to-one visit.

        Parameters
        ----------
        info : `astro_metadata_translator.ObservationInfo`
            Translation with at least `TRANSLATED_PROPERTIES`.

        Returns
        -------
        records : `ExposureRecords`
            Records without regions.
        """
        instrument = info.instrument
        day_start = astropy.time.Time(_iso_date(info.observing_day), scale="tai") + info.observing_day_offset
        common = {
            "instrument": instrument,
            "physical_filter": info.physical_filter,
            "day_obs": info.observing_day,
            "exposure_time": float(info.exposure_time.to_value(u.s)),
            "seq_num": info.observation_counter,
            "target_name": info.object,
            "observation_reason": info.observation_reason,
            "science_program": info.science_program,
            "azimuth": float(info.altaz_begin.az.deg),
            "zenith_angle": float(90.0 - info.altaz_begin.alt.deg),
            "timespan": Timespan(info.datetime_begin, info.datetime_end),
        }
        tracking = info.tracking_radec.icrs
        exposure = common | {
            "id": info.exposure_id,
            "obs_id": info.observation_id,
            "group": info.exposure_group,
            "dark_time": float(info.dark_time.to_value(u.s)),
            "observation_type": info.observation_type,
            "seq_start": info.observation_counter,
            "seq_end": info.observation_counter,
            "tracking_ra": float(tracking.ra.deg),
            "tracking_dec": float(tracking.dec.deg),
            "sky_angle": float(info.boresight_rotation_angle.deg),
            "has_simulated": info.has_simulated_content,
            "can_see_sky": info.can_see_sky,
        }
        visit = common | {"id": info.visit_id, "name": info.observation_id}
        return cls(
            instrument=instrument,
            day_obs={
                "instrument": instrument,
                "id": info.observing_day,
                "timespan": Timespan(day_start, day_start + 1 * u.day),
            },
            group={"instrument": instrument, "name": info.exposure_group},
            exposure=exposure,
            visit=visit,
        )

    def with_regions(
        self, detector_regions: Mapping[int, ConvexPolygon], region: ConvexPolygon
    ) -> ExposureRecords:
        """Return a copy with the visit region and per-detector regions.

        Parameters
        ----------
        detector_regions : `~collections.abc.Mapping` [`int`, `lsst.sphgeom.ConvexPolygon`]
            Region of each detector (empty for products without detectors).
        region : `lsst.sphgeom.ConvexPolygon`
            Region of the whole visit.

        Returns
        -------
        records : `ExposureRecords`
            The updated records.
        """
        return dataclasses.replace(
            self, visit=self.visit | {"region": region}, detector_regions=dict(detector_regions)
        )

    @property
    def exposure_id(self) -> int:
        """The exposure (and visit) ID."""
        return self.exposure["id"]

    def element_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Return the rows to insert, keyed by dimension element, in an order
        that satisfies foreign keys.

        Returns
        -------
        rows : `dict` [`str`, `list` [`dict`]]
            Rows of day_obs, group, exposure, visit, visit_definition,
            visit_system_membership and visit_detector_region.
        """
        instrument = self.instrument
        visit_id = self.visit["id"]
        return {
            "day_obs": [self.day_obs],
            "group": [self.group],
            "exposure": [self.exposure],
            "visit": [self.visit],
            "visit_definition": [{"instrument": instrument, "exposure": self.exposure_id, "visit": visit_id}],
            "visit_system_membership": [
                {"instrument": instrument, "visit_system": ONE_TO_ONE_VISIT_SYSTEM, "visit": visit_id}
            ],
            "visit_detector_region": [
                {"instrument": instrument, "visit": visit_id, "detector": detector, "region": region}
                for detector, region in sorted(self.detector_regions.items())
            ],
        }


def _iso_date(day_obs: int) -> str:
    return f"{day_obs // 10000:04d}-{day_obs // 100 % 100:02d}-{day_obs % 100:02d}"
