# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# CalibrateImageTask (label ``calibrateImage``) overrides for CASU VIRCAM stacks, applied by
# lsst.obs.vista.Vircam to every pipeline that declares the instrument.
from lsst.obs.vista import Vircam
from lsst.obs.vista.calibrate import CasuCatalogComparisonTask, ColorTermConfig
from lsst.obs.vista.isr import VistaIsrConfig

# CASU writes an imcore catalogue beside every stack: compare our positions and fluxes with
# it (CASU_* entries of the output metadata), as a check, never as a reference.
config.doCompareCatalog = True
config.connections.comparison_catalog = "casu_catalog"
config.catalogComparison.retarget(CasuCatalogComparisonTask)

# CASU's WCS is fitted to 2MASS to ~0.1 arcsec: the offset search needs only a few arcsec.
config.astrometry.searchRadius = 3.0

# The zero point is fitted to 2MASS point sources, as CASU calibrates VIRCAM (Gonzalez-Fernandez
# et al. 2018, MNRAS 474, 5459): `butler ingest-refcat --schema 2mass REPO twomass_psc FILE...`.
# The astrometry keeps its own catalogue (gaia_dr3).  Without 2MASS shards the header's MAGZPT
# is kept (PHOTOCAL_SOURCE=header).
config.connections.photometry_ref_cat = "twomass_psc"

# 2MASS (Vega) to VISTA (Vega) magnitudes, band: (primary 2MASS column, colour columns, slope):
#   m_VISTA = primary + slope * colour.
# Source: the transformations CASU's VIRCAM products use (PHOTCAL_TAB of the ESO/CASU
# pipeline), as ESO's data-processing FAQ "Are there any colour transformations available for
# the VIRCAM filters?" lists them, written there as e.g. Z = 2.025 J - 1.025 H, i.e.
# Z = J + 1.025 (J - H); checked against that page.  Gonzalez-Fernandez et al. (2018) later
# refit them in (J - Ks) with reddening terms; from memory (not checked against the paper)
# J = J - 0.031 (J-Ks), H = H + 0.015 (J-Ks), Ks = Ks - 0.006 (J-Ks); not used here until
# checked against the paper.  No constant terms: CASU ties VISTA's Vega system to 2MASS's.
_TWOMASS_TO_VISTA = {
    "z": ("j_m", ("j_m", "h_m"), 1.025),
    "y": ("j_m", ("j_m", "h_m"), 0.610),
    "J": ("j_m", ("j_m", "h_m"), -0.077),
    "H": ("h_m", ("j_m", "h_m"), 0.032),
    "Ks": ("k_m", ("j_m", "k_m"), 0.010),
}

# The colour terms predict AB magnitudes: the Vega-to-AB offsets are the ones isr applies to
# MAGZPT (VistaIsrConfig.vegaToAb as this instrument configures it), so that the fitted and
# header zero points are on one scale.
_isr = VistaIsrConfig()
Vircam().applyConfigOverrides("isr", _isr)
for _band, (_primary, _colour, _slope) in _TWOMASS_TO_VISTA.items():
    config.photometry.colorTerms[_band] = ColorTermConfig(
        primary=_primary,
        colorColumns=list(_colour),
        coefficients=[_isr.vegaToAb[_band], _slope],
        # A star without both 2MASS magnitudes of its colour is left out, not given a guessed colour.
        requireColor=True,
    )
