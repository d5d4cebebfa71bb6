# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# CalibrateImageTask (label ``calibrateImage``) overrides for CASU WFCAM stacks, applied by
# lsst.obs.vista.Wfcam to every pipeline that declares the instrument.
from lsst.obs.vista import Wfcam
from lsst.obs.vista.calibrate import CasuCatalogComparisonTask, ColorTermConfig
from lsst.obs.vista.isr import VistaIsrConfig

# CASU writes an imcore catalogue beside every stack: compare our positions and fluxes with it
# (CASU_* entries of the output metadata), as a check, never as a reference.
config.doCompareCatalog = True
config.connections.comparison_catalog = "casu_catalog"
config.catalogComparison.retarget(CasuCatalogComparisonTask)

# CASU's WCS is fitted to 2MASS to ~0.1 arcsec: the offset search needs only a few arcsec.
config.astrometry.searchRadius = 3.0

# The zero point is fitted to 2MASS point sources, as CASU calibrates WFCAM (Hodgkin et al.
# 2009, MNRAS 394, 675): `butler ingest-refcat --schema 2mass REPO twomass_psc FILE...`.  The
# astrometry keeps its own catalogue (gaia_dr3).  Without 2MASS shards the header's MAGZPT is
# kept (PHOTOCAL_SOURCE=header).
config.connections.photometry_ref_cat = "twomass_psc"

# 2MASS (Vega) to WFCAM (Vega) magnitudes, band: (primary 2MASS column, colour columns, slope,
# constant): m_WFCAM = primary + slope * colour + constant.
# Source: Hodgkin et al. (2009), MNRAS 394, 675, the colour equations for low-reddening stars
# that CASU calibrates WFCAM with.  Written from memory, NOT checked against the paper in this
# change: verify every coefficient (and the H constant, -0.03) before relying on them; the
# paper also gives E(B-V) terms for Z and Y, which are not applied.
_TWOMASS_TO_WFCAM = {
    "z": ("j_m", ("j_m", "h_m"), 0.950, 0.0),
    "y": ("j_m", ("j_m", "h_m"), 0.500, 0.0),
    "J": ("j_m", ("j_m", "h_m"), -0.065, 0.0),
    "H": ("h_m", ("j_m", "h_m"), 0.070, -0.030),
    "K": ("k_m", ("j_m", "k_m"), 0.010, 0.0),
}

# The colour terms predict AB magnitudes: the Vega-to-AB offsets are the ones isr applies to
# MAGZPT (config/wfcam/isr.py), so that the fitted and header zero points are on one scale.
_isr = VistaIsrConfig()
Wfcam().applyConfigOverrides("isr", _isr)
for _band, (_primary, _colour, _slope, _constant) in _TWOMASS_TO_WFCAM.items():
    config.photometry.colorTerms[_band] = ColorTermConfig(
        primary=_primary,
        colorColumns=list(_colour),
        coefficients=[_isr.vegaToAb[_band] + _constant, _slope],
        # A star without both 2MASS magnitudes of its colour is left out, not given a guessed colour.
        requireColor=True,
    )
