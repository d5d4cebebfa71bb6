"""The ``bps submit`` command line of an instrument's ProcessCcd pipeline
with the configuration in the package's ``bps/`` folder."""

from __future__ import annotations

__all__ = ("bps_submit_command",)

from .._resources import BPS_DIR


def bps_submit_command(
    repo: str,
    output: str,
    where: str,
    *,
    instrument: str = "VIRCAM",
    submit_config: str | None = None,
    inputs: str | None = None,
    compute_site: str = "local",
) -> list[str]:
    """Return the ``bps submit`` argv that runs ProcessCcd on ``where``.

    Parameters
    ----------
    repo : `str`
        Butler repository.
    output : `str`
        Output chained collection.
    where : `str`
        Data-ID query expression.
    instrument : `str`, optional
        ``VIRCAM`` or ``DECam``: which pipeline runs.
    inputs : `str`, optional
        Comma-separated input collections; by default the instrument's
        ``<instrument>/defaults`` and ``refcats/gaia_dr3``.
    submit_config : `str`, optional
        bps configuration file; ``bps/ProcessCcd.yaml`` by default (a file
        of yours can include it and change e.g. ``site.local.cores``).
    compute_site : `str`, optional
        Site of ``bps/ProcessCcd.yaml`` (``local``, ``slurm``, ``htcondor``).

    Returns
    -------
    command : `list` [`str`]
    """
    return [
        "bps",
        "submit",
        submit_config or str(BPS_DIR / "ProcessCcd.yaml"),
        "--compute-site",
        compute_site,
        "-b",
        repo,
        "-i",
        inputs or f"{instrument}/defaults,refcats/gaia_dr3",
        "-o",
        output,
        "-d",
        where,
        "-p",
        f"resource://lsst.obs.vista/pipelines/{instrument}/ProcessCcd.yaml",
    ]
