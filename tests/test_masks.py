"""set_planes and unflagged against lsst.images' own Mask.set and get."""

import numpy as np
import pytest
from lsst.images import Box, Mask, MaskPlane, MaskSchema

from lsst.obs.vista.isr.masks import set_planes, unflagged


@pytest.mark.parametrize("n_planes", [8, 16, 20, 33])
def test_set_planes_agrees_with_mask_set(n_planes):
    """One word per pixel (1, 2 and 8 bytes) and byte layers (3 bytes)."""
    rng = np.random.default_rng(n_planes)
    schema = MaskSchema([MaskPlane(f"P{i}", "test plane") for i in range(n_planes)])
    bbox = Box.factory[3:33, 5:45]
    planes = {f"P{i}": rng.random(bbox.shape) < 0.2 for i in range(n_planes)}
    # Planes sharing one array, as BAD and LOW_CONFIDENCE do, across bytes.
    planes["P2"] = planes[f"P{n_planes - 1}"] = planes["P0"]
    # A bit already set stays set: set_planes ORs into the mask.
    corner = np.zeros(bbox.shape, dtype=bool)
    corner[0, 0] = True
    ours, reference = Mask(schema=schema, bbox=bbox), Mask(schema=schema, bbox=bbox)
    ours.set("P1", corner)
    reference.set("P1", corner)
    set_planes(ours, {name: pixels for name, pixels in planes.items() if name != "P1"})
    for name, pixels in planes.items():
        if name != "P1":
            reference.set(name, pixels)
    np.testing.assert_array_equal(ours.array, reference.array)
    expected_clear = ~np.logical_or.reduce([reference.get(name) for name in schema.names])
    np.testing.assert_array_equal(unflagged(ours), expected_clear)
    assert not expected_clear.all() and expected_clear.any()
