# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# CalibrateImageTask (label ``calibrateImage``) overrides for CASU WFCAM stacks, applied by
# lsst.obs.vista.Wfcam to every pipeline that declares the instrument.

# CASU writes an imcore catalogue beside every stack: compare our positions and fluxes with it
# (CASU_* entries of the output metadata), as a check, never as a reference.
config.doCompareCasuCatalog = True

# CASU's WCS is fitted to 2MASS to ~0.1 arcsec: the offset search needs only a few arcsec.
config.astrometry.searchRadius = 3.0
