"""One table of what the benchmarks measured.

Each benchmark records its rows with `record` in
``benchmarks/output/<benchmark>.rows.json``; ``python benchmarks/results.py``
(the last step of ``make benchmarks``) prints the rows of every benchmark
of the current run as one table: what was compared, the two figures, their
ratio, the target and whether it was met, and the peak memory of the
measured side.  A ratio is always taken between two figures measured in the
same run, so that the machine's speed cancels out.
"""

from __future__ import annotations

__all__ = ("OUTPUT", "Row", "print_table", "record")

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "output"


@dataclass(frozen=True)
class Row:
    """One comparison of a benchmark.

    Parameters
    ----------
    comparison : `str`
        What is measured against what, e.g. ``"isr run / astropy floor"``.
    value : `float`
        The measured figure (seconds unless ``unit`` says otherwise).
    baseline : `float`
        The figure it is compared with, measured in the same run.
    unit : `str`
        Unit of ``value`` and ``baseline``.
    target : `str` or `None`
        The target on the ratio as ``"<= X"`` or ``">= X"``; `None` for a
        figure given for information.
    peak_memory_mib : `float` or `None`
        Peak memory of the measured side, in MiB, where it was measured.
    """

    comparison: str
    value: float
    baseline: float
    unit: str = "s"
    target: str | None = None
    peak_memory_mib: float | None = None

    @property
    def ratio(self) -> float:
        """``value / baseline``."""
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """Whether the ratio meets the target (`None` without a target)."""
        if self.target is None:
            return None
        operator, bound = self.target.split()
        return self.ratio <= float(bound) if operator == "<=" else self.ratio >= float(bound)


def record(benchmark: str, rows: list[Row]) -> Path:
    """Write a benchmark's rows to ``OUTPUT/<benchmark>.rows.json``; return the path."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{benchmark}.rows.json"
    path.write_text(
        json.dumps({"benchmark": benchmark, "time": time.time(), "rows": [asdict(row) for row in rows]}, indent=2)
        + "\n"
    )
    return path


def _format(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}" if unit else f"{value:.3g}"


def print_table(since: float = 0.0, stream=sys.stdout) -> bool:
    """Print the rows of every benchmark recorded after ``since`` (a Unix time).

    Returns
    -------
    all_met : `bool`
        Whether every row with a target met it.
    """
    header = ("benchmark", "comparison", "measured", "baseline", "ratio", "target", "met", "peak MiB")
    lines = []
    all_met = True
    for path in sorted(OUTPUT.glob("*.rows.json")):
        content = json.loads(path.read_text())
        if content["time"] < since:
            continue
        for fields in content["rows"]:
            row = Row(**fields)
            all_met &= row.met is not False
            lines.append(
                (
                    content["benchmark"],
                    row.comparison,
                    _format(row.value, row.unit),
                    _format(row.baseline, row.unit),
                    f"{row.ratio:.2f}",
                    row.target or "",
                    {True: "yes", False: "NO", None: ""}[row.met],
                    "" if row.peak_memory_mib is None else f"{row.peak_memory_mib:.0f}",
                )
            )
    print("| " + " | ".join(header) + " |", file=stream)
    print("|" + "---|" * len(header), file=stream)
    for line in lines:
        print("| " + " | ".join(line) + " |", file=stream)
    return all_met


if __name__ == "__main__":
    since = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    sys.exit(0 if print_table(since) else 1)
