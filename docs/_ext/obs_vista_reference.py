"""Sphinx extension that writes the generated reference pages of obs_vista.

Before Sphinx reads its sources, this extension writes three pages into
``docs/generated/`` from the code itself, so that they cannot drift from it:

- ``config.rst``: every pex_config field of each pipeline task and of its
  subtasks (name, type, default, doc);
- ``datasets.rst``: every dataset type of the pipelines in ``pipelines/``,
  with its storage class, dimensions, producing task and consumers;
- ``cli.rst``: the ``--help`` text of every command the package installs.
"""

from __future__ import annotations

__all__ = ("setup", "write_reference_pages")

import functools
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import lsst.pex.config as pexConfig
import yaml
from lsst.daf.butler import DimensionUniverse
from lsst.pipe.base import Pipeline, PipelineGraph

from lsst.obs.vista._resources import CONFIG_DIR, PIPELINES_DIR, POLICY_DIR

# The tasks whose configuration is documented, in pipeline order.
TASKS = (
    "lsst.obs.vista.VistaIsrTask",
    "lsst.obs.vista.DecamCpIsrTask",
    "lsst.obs.vista.CalibrateImageTask",
    "lsst.obs.vista.coadd.MakeDirectWarpTask",
    "lsst.obs.vista.coadd.AssembleCellCoaddTask",
)

# Help text is wrapped at this width, whatever the terminal of the build.
HELP_WIDTH = 100


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


_MADE_OUTSIDE_PIPELINES = {"skyMap": "``butler register-skymap``"}
"""Commands that register the non-ingested dataset types the pipelines read."""

_SAME = "\u00b7"
"""Cell text of an instrument's value that is the task's default."""


@functools.cache
def _graphs() -> dict[str, PipelineGraph]:
    """Return each instrument's full pipeline (``pipelines/<instrument>/DRP.yaml``),
    resolved, with the instrument's config overrides applied."""
    graphs = {}
    for path in sorted(PIPELINES_DIR.glob("*/DRP.yaml"), reverse=True):  # VIRCAM first
        graph = Pipeline.from_uri(str(path)).to_graph()
        graph.resolve(dimensions=DimensionUniverse())
        graphs[path.parent.name] = graph
    return graphs


def _heading(text: str, underline: str) -> str:
    return f"{text}\n{underline * len(text)}\n\n"


def _type_name(field: pexConfig.Field) -> str:
    """Return a short name for the type of the values a field holds."""
    if isinstance(field, pexConfig.ListField):
        return f"list[{field.itemtype.__name__}]"
    if isinstance(field, pexConfig.DictField):
        return f"dict[{field.keytype.__name__}, {field.itemtype.__name__}]"
    if isinstance(field, pexConfig.ConfigurableField):
        return "subtask"
    if isinstance(field, pexConfig.ConfigField):
        return "config"
    if isinstance(field, pexConfig.ChoiceField):
        return f"{field.dtype.__name__} (one of {', '.join(repr(key) for key in field.allowed)})"
    if isinstance(field, pexConfig.RangeField):
        low = "[" if field.minCheck is None or field.minCheck.__name__ == "le" else "("
        return f"{field.dtype.__name__} in {low}{field.min}, {field.max}]"
    dtype = getattr(field, "dtype", None)
    return dtype.__name__ if isinstance(dtype, type) else type(field).__name__


def _default(value: Any) -> str:
    if isinstance(value, pexConfig.Config):
        return ""
    if hasattr(value, "target"):  # a ConfigurableInstance: name the task it runs
        target = value.target
        return f"{target.__module__}.{target.__qualname__}"
    if hasattr(value, "__iter__") and not isinstance(value, str | bytes):
        if hasattr(value, "items"):
            return repr(dict(value.items()))
        return repr(list(value))
    return repr(value)


def _walk(config: pexConfig.Config, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """Yield (name, type, default, doc) for every field of a config, its
    subtasks' and its sub-configs' fields following each subtask's own row."""
    for name, field in config._fields.items():
        value = getattr(config, name)
        full_name = f"{prefix}{name}"
        yield full_name, _type_name(field), _default(value), " ".join(field.doc.split())
        if isinstance(field, pexConfig.ConfigurableField):
            yield from _walk(value.value, f"{full_name}.")
        elif isinstance(field, pexConfig.ConfigField):
            yield from _walk(value, f"{full_name}.")


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "\u2014"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", "   :class: longtable", ""]
    for row in (header, *rows):
        lines.append(f"   * - {_cell(row[0])}")
        lines.extend(f"     - {_cell(cell)}" for cell in row[1:])
    return "\n".join(lines) + "\n\n"


def config_page() -> str:
    """Return the configuration reference page."""
    text = [
        _heading("Configuration reference", "="),
        "Generated from the pex_config fields of each task when the documentation is built.  "
        "*Default* is the task's own default; the instrument overrides in ``config/<instrument>/`` "
        "(listed at the end of this page) apply on top of it whenever a pipeline declares the "
        "instrument, and ``-c LABEL:FIELD=VALUE`` or ``-C LABEL:FILE`` on the command line apply "
        "last.  *In VIRCAM* and *In DECam* give the value in that instrument's pipelines "
        "(``pipelines/<instrument>/DRP.yaml``, which imports ``ProcessCcd.yaml``) where it differs "
        f"from the default ({_SAME} where it does not); a retargeted subtask's row names the task "
        "the pipeline runs, and the fields listed under it are those of the default task.  A "
        "subtask's fields follow its own row, named with its prefix (``background.meshSize``).\n\n",
    ]
    for path in TASKS:
        task = _import(path)
        text.append(_heading(f"{task.__name__} (``{task._DefaultName}``)", "-"))
        text.append(
            f"``{path}``, configured by ``{task.ConfigClass.__module__}.{task.ConfigClass.__name__}``.\n\n"
        )
        class_name = f"{task.__module__}.{task.__qualname__}"
        effective = {
            instrument: {name: default for name, _, default, _ in _walk(node.config)}
            for instrument, graph in _graphs().items()
            for node in graph.tasks.values()
            if node.task_class_name == class_name
        }
        rows = []
        for name, type_, default, doc in _walk(task.ConfigClass()):
            overridden = [
                _SAME if values.get(name, default) == default else f"``{values[name]}``"
                for values in effective.values()
            ]
            rows.append((f"``{name}``", type_, f"``{default}``" if default else "", *overridden, doc))
        columns = tuple(f"In {instrument}" for instrument in effective)
        text.append(_table(("Field", "Type", "Default", *columns, "Meaning"), rows))
    text.append(_heading("Instrument overrides", "-"))
    for instrument in ("vircam", "decam"):
        for override in sorted((CONFIG_DIR / instrument).glob("*.py")):
            text.append(_heading(f"config/{instrument}/{override.name}", "^"))
            text.append(".. code-block:: python\n\n" + textwrap.indent(override.read_text(), "   ") + "\n")
    return "".join(text)


def dataset_page() -> str:
    """Return the page of every dataset type the pipelines read or write."""
    # One entry per dataset type: the same type appears in both instruments'
    # pipelines, with the same storage class and dimensions.
    found: dict[str, dict[str, Any]] = {}
    docs: dict[str, str] = {}
    made_outside = dict(_MADE_OUTSIDE_PIPELINES)
    for instrument, graph in _graphs().items():
        for name, node in graph.dataset_types.items():
            entry = found.setdefault(
                name,
                {
                    "storage_class": node.storage_class_name,
                    "dimensions": ", ".join(node.dimensions.required),
                    "producer": graph.producer_of(name),
                    "consumers": set(),
                    "prerequisite": node.is_prerequisite,
                    "instruments": [],
                },
            )
            entry["consumers"].update(task.label for task in graph.consumers_of(name))
            entry["instruments"].append(instrument)
        # What each dataset is: the doc of the connection that writes it, else of one
        # that reads it; for ingested products, their policy's doc.
        for task in graph.tasks.values():
            connections = task.get_connections()
            for attribute in sorted(connections.outputs) + sorted(connections.allConnections):
                connection = connections.allConnections[attribute]
                docs.setdefault(connection.name, connection.doc)
    # A dataset type several instruments ingest (VIRCAM's and WFCAM's casu_stack) keeps the
    # first policy's doc and names every policy.
    policies: dict[str, list[str]] = {}
    for policy in sorted(POLICY_DIR.glob("*/datasets.yaml")):
        for name, product in yaml.safe_load(policy.read_text())["products"].items():
            if name not in policies:
                docs[name] = product["doc"]
            policies.setdefault(name, []).append(f"``policy/{policy.parent.name}/datasets.yaml``")
    for name, files in policies.items():
        made_outside[name] = f"``butler ingest-*`` ({', '.join(files)})"
    text = [
        _heading("Dataset types", "="),
        "Generated from the connections of the tasks in "
        + ", ".join(f"``pipelines/{instrument}/DRP.yaml``" for instrument in _graphs())
        + " (which import each instrument's ``ProcessCcd.yaml``) when the documentation is built.  "
        "*Made by* names the task that writes a dataset, or the command that registers it; a *prerequisite* "
        "input must exist before the quantum graph is built (a missing optional one is a warning "
        "at run time, not an error).  Task metadata, logs and configs (``<label>_metadata``, "
        "``<label>_log``, ``<label>_config``) are written by every task and listed at the end.\n\n",
    ]
    bookkeeping = ("_config", "_log", "_metadata")
    for title, keep in (("Data", False), ("Bookkeeping", True)):
        rows = []
        for name in sorted(found):
            if name.endswith(bookkeeping) != keep:
                continue
            entry = found[name]
            producer = entry["producer"]
            if producer is not None:
                made_by = f"``{producer.label}``"
            elif "htm7" in entry["dimensions"]:
                made_by = "``butler ingest-refcat``"
            else:
                made_by = made_outside.get(name, "outside the pipelines")
            if entry["prerequisite"]:
                made_by += " (prerequisite)"
            rows.append(
                (
                    f"``{name}``",
                    f"``{entry['storage_class']}``",
                    entry["dimensions"],
                    made_by,
                    ", ".join(f"``{label}``" for label in sorted(entry["consumers"])),
                    ", ".join(entry["instruments"]),
                    " ".join(docs.get(name, "").split()),
                )
            )
        text.append(_heading(title, "-"))
        header = ("Dataset type", "Storage class", "Dimensions", "Made by", "Read by", "Pipelines", "Meaning")
        text.append(_table(header, rows))
    return "".join(text)


def _commands() -> list[tuple[str, click.Command]]:
    from lsst.obs.vista.cli import get_cli_subcommands
    from lsst.obs.vista.cli.coadd_driver import coadd_driver
    from lsst.obs.vista.cli.ingest_images import ingest_images
    from lsst.obs.vista.cli.multi_band_driver import multi_band_driver
    from lsst.obs.vista.cli.process_ccd import process_ccd

    commands = [(f"butler {command.name}", command) for command in get_cli_subcommands()]
    scripts = [
        ("processCcd.py", process_ccd),
        ("coaddDriver.py", coadd_driver),
        ("multiBandDriver.py", multi_band_driver),
        ("ingestImages.py", ingest_images),
    ]
    return [*commands, *scripts]


def cli_page() -> str:
    """Return the command-line reference: every command's ``--help``."""
    text = [
        _heading("Command-line reference", "="),
        "The ``--help`` of every command the package installs, generated when the documentation "
        "is built.  The ``butler`` subcommands appear in ``butler --help`` once the package is "
        "installed (the ``butler.cli`` entry point); ``processCcd.py``, ``coaddDriver.py``, "
        "``multiBandDriver.py`` and ``ingestImages.py`` are console scripts.\n\n",
    ]
    for name, command in _commands():
        context = click.Context(
            command, info_name=name, terminal_width=HELP_WIDTH, max_content_width=HELP_WIDTH
        )
        text.append(_heading(name, "-"))
        text.append(".. code-block:: text\n\n" + textwrap.indent(command.get_help(context), "   ") + "\n\n")
    return "".join(text)


def write_reference_pages(directory: Path) -> list[Path]:
    """Write the generated pages into a directory.

    Parameters
    ----------
    directory : `pathlib.Path`
        Where to write; created if missing.  A page whose text has not
        changed is left untouched, so Sphinx does not re-read it.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        The pages, one per generator.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, generate in (("config", config_page), ("datasets", dataset_page), ("cli", cli_page)):
        path = directory / f"{name}.rst"
        text = generate()
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        paths.append(path)
    return paths


def _on_builder_inited(app: Any) -> None:
    write_reference_pages(Path(app.srcdir) / "generated")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
