"""Write the Gaia DR3 stars around a field as a table ``butler ingest-refcat`` reads.

Usage::

    python query_gaia_dr3.py RA DEC RADIUS OUTPUT.fits

RA, DEC and RADIUS in degrees; a VIRCAM pawprint needs a radius of about 0.9, a
tile 1.2, a DECam focal plane 1.2.  Needs ``astroquery`` (``pip install
astroquery``) and network access to the ESA Gaia archive.
"""

import sys

# The columns of lsst.obs.vista.refcat.schema.GAIA_COLUMNS that gaiadr3.gaia_source
# holds.  The required ones come first; the rest are kept when present and
# stored fully masked when not.  Left out: astrometric_weight_al, a_g_val and
# e_bp_min_rp_val (Gaia DR2 columns, not in DR3's gaia_source) and
# phot_variable_flag (text in DR3, a boolean in the reference catalogue).
REQUIRED_COLUMNS = (
    "source_id",
    "ra",
    "dec",
    "ra_error",
    "dec_error",
    "phot_g_mean_mag",
    "phot_g_mean_flux_over_error",
    "phot_bp_mean_mag",
    "phot_bp_mean_flux_over_error",
    "phot_rp_mean_mag",
    "phot_rp_mean_flux_over_error",
    "ref_epoch",
    "pmra",
    "pmra_error",
    "pmdec",
    "pmdec_error",
)
OPTIONAL_COLUMNS = (
    "phot_g_n_obs",
    "phot_bp_n_obs",
    "phot_rp_n_obs",
    "astrometric_n_obs_al",
    "astrometric_n_good_obs_al",
    "astrometric_excess_noise",
    "astrometric_excess_noise_sig",
    "duplicated_source",
    "parallax",
    "parallax_error",
    "phot_bp_rp_excess_factor",
    "astrometric_sigma5d_max",
    "astrometric_params_solved",
)


def query(ra: float, dec: float, radius: float) -> str:
    """Return the ADQL query of the stars within ``radius`` degrees of (ra, dec)."""
    columns = ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
    return (
        f"SELECT {columns} FROM gaiadr3.gaia_source "
        f"WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE({ra}, {dec}, {radius}))"
    )


def main() -> None:
    from astroquery.gaia import Gaia  # an asynchronous ADQL job has no row limit

    ra, dec, radius = (float(value) for value in sys.argv[1:4])
    table = Gaia.launch_job_async(query(ra, dec, radius)).get_results()
    # The archive may answer in upper case (SOURCE_ID); the reference schema is lower case.
    table.rename_columns(table.colnames, [name.lower() for name in table.colnames])
    # The archive's VOTable carries the Gaia units (deg, mas, mas/yr, mag, yr), which
    # ingest-refcat converts to and checks against the reference schema.
    table.write(sys.argv[4], overwrite=True)
    print(f"{sys.argv[4]}: {len(table)} stars")


if __name__ == "__main__":
    main()
