"""One command-line style: every command of the package is asked for its
``--help``, and the options several commands share are spelt alike (as
``butler`` and ``pipetask`` spell them) and read their values alike."""

from __future__ import annotations

import click
import pytest
from lsst.daf.butler.cli.butler import cli
from lsst.daf.butler.cli.utils import LogCliRunner

from lsst.obs.vista.cli import get_cli_subcommands
from lsst.obs.vista.cli.coadd_driver import coadd_driver
from lsst.obs.vista.cli.commands import ingest_commands
from lsst.obs.vista.cli.ingest_images import ingest_images
from lsst.obs.vista.cli.multi_band_driver import multi_band_driver
from lsst.obs.vista.cli.process_ccd import process_ccd
from lsst.obs.vista.report.__main__ import report

SCRIPTS: dict[str, click.Command] = {
    "processCcd.py": process_ccd,
    "coaddDriver.py": coadd_driver,
    "multiBandDriver.py": multi_band_driver,
    "ingestImages.py": ingest_images,
    "python -m lsst.obs.vista.report": report,
}
SUBCOMMANDS: dict[str, click.Command] = {command.name: command for command in get_cli_subcommands()}
COMMANDS = {**SCRIPTS, **{f"butler {name}": command for name, command in SUBCOMMANDS.items()}}

SPELLINGS = (
    ("-i", "--input"),
    ("-o", "--output"),
    ("-d", "--data-query"),
    ("--collections",),
    ("--where",),
    ("-t", "--transfer"),
    ("-j", "--processes"),
    ("-C", "--config-file"),
    ("-c", "--config"),
    ("--log-level",),
    ("-h", "--help"),
)
"""Each shared option's spellings: a command that has one of them has all."""

EXPECTED = {
    "processCcd.py": {"--input", "--output", "--data-query", "--where", "--config-file", "--config",
                      "--processes", "--log-level"},
    "coaddDriver.py": {"--input", "--output", "--data-query", "--where", "--config", "--processes",
                       "--log-level"},
    "multiBandDriver.py": {"--input", "--output", "--data-query", "--where", "--config", "--processes",
                           "--log-level"},
    "ingestImages.py": {"--transfer", "--processes", "--log-level"},
    "python -m lsst.obs.vista.report": {"--collections", "--output", "--where", "--log-level"},
    "butler make-report": {"--collections", "--output", "--where"},
    "butler summarize-isr": {"--collections", "--where"},
    "butler export-legacy": {"--collections", "--where"},
    # Every registered instrument's ingest command (ingest-casu, ingest-instcal, ingest-wfcam ...).
    **{f"butler {command.name}": {"--transfer", "--processes"} for command in ingest_commands()},
    "butler ingest-refcat": set(),
    "butler register-skymap": {"--config-file", "--config"},
}  # fmt: skip
"""The shared options each command takes (``butler`` takes ``--log-level``
before its subcommand)."""


def help_text(name: str) -> str:
    if name in SCRIPTS:
        result = LogCliRunner().invoke(SCRIPTS[name], ["--help"], prog_name=name)
    else:
        result = LogCliRunner().invoke(cli, [*name.split()[1:], "--help"], prog_name="butler")
    assert result.exit_code == 0, result.output
    return result.stdout


def option_spellings(text: str) -> set[str]:
    """The option names of a ``--help`` text's option lines."""
    names = set()
    for line in text.splitlines():
        entry = line.strip()
        if not line.startswith("  -") or not entry.startswith("-"):
            continue
        for part in entry.split("  ")[0].split(", "):
            names.add(part.split(" ")[0])
    return names


@pytest.fixture(scope="module")
def spellings() -> dict[str, set[str]]:
    return {name: option_spellings(help_text(name)) for name in COMMANDS}


def test_every_command_is_listed() -> None:
    """Every command of the package is in the table, and ``butler --help``
    lists each subcommand."""
    assert set(EXPECTED) == set(COMMANDS)
    listing = help_text("butler")
    for name in SUBCOMMANDS:
        assert f"  {name} " in listing


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shared_options_are_spelt_alike(name: str, spellings: dict[str, set[str]]) -> None:
    names = spellings[name]
    shared = {spelling for group in SPELLINGS for spelling in group}
    assert {spelling for spelling in names & shared if spelling.startswith("--")} - {"--help"} == EXPECTED[
        name
    ]
    for group in SPELLINGS:
        if names & set(group):
            assert set(group) <= names, f"{name}: {sorted(names & set(group))} without the rest of {group}"


def test_butler_takes_the_log_level_of_its_subcommands() -> None:
    assert "--log-level" in option_spellings(help_text("butler"))
    for name in SUBCOMMANDS:
        assert "See 'butler --help' for more options." in help_text(f"butler {name}")


def parameters(option: str) -> dict[str, click.Parameter]:
    """The parameter of each command that takes ``option``."""
    found = {}
    for name, command in {**COMMANDS, "butler": cli}.items():
        for parameter in command.params:
            if option in parameter.opts:
                found[name] = parameter
    return found


@pytest.mark.parametrize("option", ["--collections", "--input"])
def test_collections_are_comma_separated_or_repeated(option: str) -> None:
    """As in ``butler`` and ``pipetask``: ``A,B --X C`` is A, B and C."""
    found = parameters(option)
    assert found
    for name, parameter in found.items():
        context = click.Context(COMMANDS[name])
        assert tuple(parameter.process_value(context, ("A,B", "C"))) == ("A", "B", "C"), name


def test_log_level_reads_alike_in_the_scripts_and_butler() -> None:
    found = parameters("--log-level")
    assert set(found) == {
        "processCcd.py",
        "coaddDriver.py",
        "multiBandDriver.py",
        "ingestImages.py",
        "python -m lsst.obs.vista.report",
        "butler",
    }
    values = {
        name: parameter.process_value(click.Context(cli), ("DEBUG", "lsst.obs.vista=INFO"))
        for name, parameter in found.items()
    }
    assert len({repr(value) for value in values.values()}) == 1, values


@pytest.mark.parametrize("option", ["--where", "--output"])
def test_query_and_output_take_one_value(option: str) -> None:
    found = parameters(option)
    assert len(found) >= 3
    for name, parameter in found.items():
        assert not parameter.multiple and parameter.nargs == 1, name
        assert isinstance(parameter.type, click.types.StringParamType), name


def test_ingest_refcat_help_names_its_required_arguments() -> None:
    """``NAME`` is a required positional: the listing and the help say so
    and claim no default."""
    listing = " ".join(help_text("butler").split())
    entry = listing[listing.index("ingest-refcat ") :].split("  ")[0]
    assert "default" not in entry
    text = help_text("butler ingest-refcat")
    assert "Usage: butler ingest-refcat [OPTIONS] REPO NAME FILE..." in text
    assert "NAME, required" in " ".join(text.split())
