# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# CalibrateImageTask (label ``calibrateImage``) overrides for CASU VIRCAM stacks, applied by
# lsst.obs.vista.Vircam to every pipeline that declares the instrument.

# CASU writes an imcore catalogue beside every stack: compare our positions and fluxes with
# it (CASU_* entries of the output metadata), as a check, never as a reference.
config.doCompareCasuCatalog = True

# CASU's WCS is fitted to 2MASS to ~0.1 arcsec: the offset search needs only a few arcsec.
config.astrometry.searchRadius = 3.0

# No published Gaia-to-VISTA colour terms are configured, so VIRCAM bands keep CASU's MAGZPT
# (with the Vega-to-AB offset of config/vircam/isr.py's VistaIsrTask) and the fit is reported
# only for bands given a colour term here, e.g.
#   from lsst.obs.vista.calibrate import ColorTermConfig
#   config.photometry.colorTerms["J"] = ColorTermConfig(primary=..., colorColumns=[...], coefficients=[...])
