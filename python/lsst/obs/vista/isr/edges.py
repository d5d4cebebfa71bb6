"""Empirical calibration of a variance model along the coverage edges of a
jittered stack.

In the interior of a stack of N jittered, bilinearly resampled exposures,
every pixel averages all N inputs, each with its own resampling factor
:math:`k_j = \\sum w^2` (0.25 to 1 depending on its sub-pixel offset); the
header only tells their mean.  Along the edges, within the jitter amplitude
of the border, a pixel averages only the subset of exposures that cover it,
whose mean :math:`k` differs from the global one by up to ~10%, and the
partially covering exposure of a border row or column contributes with a
single interpolation tap.  None of this is recorded, but it is a function of
the column (left and right edges) or the row (bottom and top edges) alone,
because the exposures are translations of one another.  So the ratio of the
measured background noise to the model can be measured per column in the
vertical edge strips and per row in the horizontal ones, and applied.  The
exposures that cover a group of columns at one edge are those that do not
cover its complement at the other, so the two measure one excess variance
and are combined.
"""

from __future__ import annotations

__all__ = ("EdgeFactors", "edge_factors")

import dataclasses

import numpy as np

from .background import BackgroundStatisticsConfig, robust_sigma

_PROFILE_STRIDE = 32
"""Rows (columns) between the samples of a column's (row's) depth profile:
the profile is set by the jitter pattern, the same all along a column, so a
sparse median finds it despite bad patches, at a quarter of the cost of
every eighth row."""


@dataclasses.dataclass(frozen=True)
class EdgeFactors:
    """Multiplicative corrections of a variance map along the edges."""

    x: np.ndarray
    """Factor for each column (1 outside the left and right edge strips)."""
    y: np.ndarray
    """Factor for each row (1 outside the bottom and top edge strips)."""
    n_groups: int
    """Number of column and row groups that were measured."""

    def apply(self, variance: np.ndarray) -> None:
        """Multiply a variance map by the factors, in place.

        Parameters
        ----------
        variance : `numpy.ndarray`
            Map to correct (corners get the product of both factors).
        """
        for x in np.flatnonzero(self.x != 1.0):
            variance[:, x] *= np.float32(self.x[x])
        for y in np.flatnonzero(self.y != 1.0):
            variance[y, :] *= np.float32(self.y[y])


def edge_factors(
    image: np.ndarray,
    variance: np.ndarray,
    usable: np.ndarray,
    relative_weight: np.ndarray,
    *,
    n_combined: int,
    statistics: BackgroundStatisticsConfig,
    min_pixels: int,
    pool_complements: bool = True,
) -> EdgeFactors:
    """Measure the edge corrections of a variance model.

    Parameters
    ----------
    image : `numpy.ndarray`
        The stack (background not subtracted).
    variance : `numpy.ndarray`
        Its modelled variance.
    usable : `numpy.ndarray` [`bool`]
        Pixels with data (and not otherwise masked).
    relative_weight : `numpy.ndarray`
        Relative depth (confidence / 100).
    n_combined : `int`
        Number of exposures in the stack.
    statistics : `BackgroundStatisticsConfig`
        Cells, detection and growing for the background pixels.
    min_pixels : `int`
        Minimum number of background pixels for a group to be corrected.
    pool_complements : `bool`
        Combine the factors of complementary groups on opposite edges (see
        `_pool_complements`).

    Returns
    -------
    factors : `EdgeFactors`
        Corrections.

    Notes
    -----
    Edge strips are found from the median relative weight of each column
    (row), sampled every 32nd row (column), ~65 samples for a detector:
    they run from the border until the profile reaches the interior
    plateau less half an exposure's share,
    ``1 - 0.5 / n_combined``.  Adjacent strip columns whose profiles differ
    by less than a quarter of an exposure's share are covered by the same
    exposures and are grouped.  The factor of a group is the robust variance
    of the normalised background residuals (see
    `~lsst.obs.vista.isr.background.cell_residuals`) of its pixels over that
    of interior cells, so the interior normalisation (SKYNOISE) is kept.
    Column strips use the rows outside the row strips and vice versa, so
    corners, covered by both, get the product of the two factors.  Finally
    a group's factor is combined with that of its complement on the
    opposite edge, which measures the same excess variance.
    """
    ny, nx = image.shape
    column_profile = _median_profile(relative_weight[::_PROFILE_STRIDE, :], axis=0)
    row_profile = _median_profile(relative_weight[:, ::_PROFILE_STRIDE], axis=1)
    share = 1.0 / n_combined
    column_interior = float(np.median(column_profile))
    row_interior = float(np.median(row_profile))
    x_strips = _strips(column_profile, column_interior, share)
    y_strips = _strips(row_profile, row_interior, share)
    interior_rows = _complement(y_strips, ny)
    interior_columns = _complement(x_strips, nx)

    reference = _reference_variance(image, variance, usable, interior_rows, interior_columns, statistics)
    factors_x = np.ones(nx)
    factors_y = np.ones(ny)
    if reference is None:
        return EdgeFactors(x=factors_x, y=factors_y, n_groups=0)
    n_groups = 0
    for factors, strips, profile, interior, arrays, across in (
        (factors_x, x_strips, column_profile, column_interior, (image, variance, usable), interior_rows),
        (factors_y, y_strips, row_profile, row_interior, (image.T, variance.T, usable.T), interior_columns),
    ):
        measured = [
            _measure_groups(*arrays, strip, profile, share, across, statistics, reference, min_pixels)
            for strip in strips
        ]
        if pool_complements and len(measured) == 2:
            _pool_complements(*measured, interior=interior, share=share)
        for groups in measured:
            for group in groups:
                factors[group.columns] = group.factor
            n_groups += len(groups)
    return EdgeFactors(x=factors_x, y=factors_y, n_groups=n_groups)


@dataclasses.dataclass
class _Group:
    """Columns of a strip covered by the same exposures, and their factor."""

    columns: slice
    level: float
    """Mean relative weight of the columns."""
    factor: float
    n_pixels: int
    """Background pixels the factor was measured on."""

    @property
    def excess(self) -> float:
        """``level * (factor - 1)``: in proportion to the variance the
        group's exposures add beyond the model, the quantity that a group
        and its complement share with opposite signs."""
        return self.level * (self.factor - 1.0)

    @property
    def excess_variance(self) -> float:
        """Variance of `excess` (up to a factor common to all groups): a
        variance measured on n pixels has a relative error of sqrt(2 / n)."""
        return 2.0 * (self.level * self.factor) ** 2 / self.n_pixels


def _measure_groups(
    image: np.ndarray,
    variance: np.ndarray,
    usable: np.ndarray,
    strip: slice,
    profile: np.ndarray,
    share: float,
    rows: slice,
    statistics: BackgroundStatisticsConfig,
    reference: float,
    min_pixels: int,
) -> list[_Group]:
    """Measure the factor of each group of a column strip with at least
    ``min_pixels`` background pixels in ``rows``."""
    residuals = _strip_residuals(image, variance, usable, rows=rows, columns=strip, statistics=statistics)
    groups = []
    for columns in _groups(profile[strip], strip.start, share):
        values = residuals[:, columns.start - strip.start : columns.stop - strip.start]
        values = values[np.isfinite(values)]
        if values.size >= min_pixels:
            groups.append(
                _Group(
                    columns=columns,
                    level=float(profile[columns].mean()),
                    factor=robust_sigma(values) ** 2 / reference,
                    n_pixels=values.size,
                )
            )
    return groups


def _pool_complements(first: list[_Group], second: list[_Group], *, interior: float, share: float) -> None:
    """Combine the factors of groups on opposite edges whose exposures are
    complements, in place.

    Exposures that are translations of one another with one footprint drop
    out at one edge in the order they come in at the other, so a group at
    the first edge covered by a subset A of the exposures has a partner at
    the second covered by the others, B, at a level of the interior's less
    its own.  Their variances add up to the interior's:
    ``|A| (F_A - 1) + |B| (F_B - 1) = 0``, with the subset sizes in
    proportion to the levels.  Each partner's measured excess thus also
    measures the other's, and they are combined with inverse-variance
    weights.  This matters at high levels: a narrow group covered by most
    exposures has a few thousand pixels whose noise realisation is a few
    percent from its expectation, while its partner, covered by few
    exposures, measures the same excess with an error smaller in
    proportion to its level.  Partners are mutual nearest matches of
    ``level_A + level_B`` to the interior level, within a quarter of an
    exposure's share.
    """
    if not first or not second:
        return
    mismatch = np.array([[abs(a.level + b.level - interior) for b in second] for a in first])
    for i, a in enumerate(first):
        j = int(np.argmin(mismatch[i]))
        if mismatch[i, j] >= 0.25 * share or int(np.argmin(mismatch[:, j])) != i:
            continue
        b = second[j]
        weight_a, weight_b = 1.0 / a.excess_variance, 1.0 / b.excess_variance
        excess = (weight_a * a.excess - weight_b * b.excess) / (weight_a + weight_b)
        a.factor = 1.0 + excess / a.level
        b.factor = 1.0 - excess / b.level


def _median_profile(samples: np.ndarray, axis: int) -> np.ndarray:
    """Median along an axis as an order statistic (one partial sort), as
    the other levels of `~lsst.obs.vista.isr.background`."""
    rank = round(0.5 * (samples.shape[axis] - 1))
    return np.take(np.partition(samples, rank, axis=axis), rank, axis=axis)


def _strips(profile: np.ndarray, interior: float, share: float) -> list[slice]:
    """Return the runs from each border where the profile is below the
    interior plateau (its median, ``interior``) less half an exposure's
    share."""
    threshold = interior - 0.5 * share
    low = profile < threshold
    n = len(profile)
    strips = []
    start = int(np.argmin(low)) if not low.all() else n
    if start > 0:
        strips.append(slice(0, start))
    stop = n - int(np.argmin(low[::-1])) if not low.all() else 0
    if stop < n and stop > start:
        strips.append(slice(stop, n))
    return strips


def _complement(strips: list[slice], n: int) -> slice:
    """The index range between the border strips."""
    start = max((s.stop for s in strips if s.start == 0), default=0)
    stop = min((s.start for s in strips if s.stop == n), default=n)
    return slice(start, stop)


def _groups(profile: np.ndarray, offset: int, share: float) -> list[slice]:
    """Split a strip into runs of columns whose profile differs by less than
    a quarter of an exposure's share from the run's first column."""
    groups = []
    first = 0
    for i in range(1, len(profile) + 1):
        if i == len(profile) or abs(profile[i] - profile[first]) >= 0.25 * share:
            groups.append(slice(offset + first, offset + i))
            first = i
    return groups


def _strip_residuals(
    image: np.ndarray,
    variance: np.ndarray,
    usable: np.ndarray,
    *,
    rows: slice,
    columns: slice,
    statistics: BackgroundStatisticsConfig,
) -> np.ndarray:
    """Normalised background residuals of a column strip, cut along its
    length into cells of ``4 * cellSize`` rows (NaN where not background):
    strips are narrow, so long cells keep the pixel count per cell up."""
    residuals = np.full((rows.stop - rows.start, columns.stop - columns.start), np.nan, dtype=np.float32)
    length = 4 * statistics.cellSize
    for start in range(rows.start, rows.stop, length):
        chunk = slice(start, min(start + length, rows.stop))
        found = statistics.measure(image, usable, (chunk, columns), variance=variance)
        if found is not None:
            residuals[chunk.start - rows.start : chunk.stop - rows.start] = found.residuals
    return residuals


def _reference_variance(
    image: np.ndarray,
    variance: np.ndarray,
    usable: np.ndarray,
    rows: slice,
    columns: slice,
    statistics: BackgroundStatisticsConfig,
) -> float | None:
    """Robust variance of the normalised residuals in up to 9 interior
    cells on a 3 x 3 grid (~1.3e5 pixels: its error is common to all
    factors, so it is measured on more pixels than any edge group)."""
    size = statistics.cellSize
    height, width = rows.stop - rows.start, columns.stop - columns.start
    if height < size or width < size:
        return None
    samples = []
    for fy in np.linspace(0.1, 0.9, 3):
        for fx in np.linspace(0.1, 0.9, 3):
            y0 = rows.start + int(fy * (height - size))
            x0 = columns.start + int(fx * (width - size))
            found = statistics.measure(
                image, usable, (slice(y0, y0 + size), slice(x0, x0 + size)), variance=variance
            )
            if found is not None:
                samples.append(found.values)
    if not samples:
        return None
    return robust_sigma(np.concatenate(samples)) ** 2
