"""Reversible packing of integer fields into positive 64-bit IDs: the one
packer behind source IDs (`lsst.obs.vista.source_id`) and object IDs
(`lsst.obs.vista.objects.object_id`)."""

from __future__ import annotations

__all__ = ("BitFieldPacker",)

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class BitFieldPacker:
    """Non-negative integer fields packed, most significant first, into the
    63 low bits of a 64-bit integer.

    The last field is a running number given as an array (the rows of one
    catalogue); the others are single values.  The sign bit stays clear, so
    that IDs are positive in the signed 64-bit integers of Arrow, Parquet
    and databases.

    Parameters
    ----------
    id_name : `str`
        What the IDs are called in error messages, e.g. ``source ID``.
    fields : `tuple` [`tuple` [`str`, `int`], ...]
        Name and number of bits of each field, most significant first.

    Raises
    ------
    ValueError
        Raised if the fields take more than 63 bits.
    """

    id_name: str
    fields: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        if sum(bits for _, bits in self.fields) > 63:
            raise ValueError(f"{self.id_name}: the fields {self.fields} take more than 63 bits")

    def check(self, field: str, value: int) -> None:
        """Raise if a value does not fit its field.

        Parameters
        ----------
        field : `str`
            Name of the field.
        value : `int`
            The value.

        Raises
        ------
        ValueError
            Raised, naming the ID, the field and its range, if
            ``value`` is not in ``[0, 2**bits)``.
        """
        bits = dict(self.fields)[field]
        if not 0 <= value < 1 << bits:
            raise ValueError(
                f"{self.id_name}: {field} {value} does not fit in {bits} bits (0 to {(1 << bits) - 1})"
            )

    def pack(self, *values: int, rows: np.ndarray) -> np.ndarray:
        """Return the IDs of rows.

        Parameters
        ----------
        *values : `int`
            The value of each field but the last, most significant first.
        rows : `numpy.ndarray` [`int`]
            Values of the last field (running numbers).

        Returns
        -------
        ids : `numpy.ndarray` [`numpy.int64`]
            The packed IDs.

        Raises
        ------
        ValueError
            Raised if a value does not fit its field (`check`).
        """
        rows = np.asarray(rows, dtype=np.int64)
        *leading, (row_field, row_bits) = self.fields
        high = 0
        for (field, bits), value in zip(leading, values, strict=True):
            self.check(field, value)
            high = high << bits | value
        if rows.size:
            self.check(row_field, int(rows.min()))
            self.check(row_field, int(rows.max()))
        return np.int64(high << row_bits) | rows

    def unpack(self, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Return the fields that IDs were packed from.

        Parameters
        ----------
        ids : `numpy.ndarray` [`int`]
            IDs made by `pack`.

        Returns
        -------
        fields : `tuple` [`numpy.ndarray` [`numpy.int64`], ...]
            One array a field, most significant first.
        """
        ids = np.asarray(ids, dtype=np.int64)
        parts = []
        for _, bits in reversed(self.fields[1:]):
            parts.append(ids & ((1 << bits) - 1))
            ids = ids >> bits
        parts.append(ids)
        return tuple(reversed(parts))
