# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# HSC SSP's skymap: 120 rings over the whole sky, TAN tracts at 0.168
# arcsec/pixel overlapping by 1 arcmin, cut into 4000x4000-pixel patches with a
# 100-pixel border.  Same tract and patch IDs and pixel grids as the Rubin
# stack's hsc_rings_v1.
config.name = "hsc_rings_v1"
config.skyMap.name = "rings"
rings = config.skyMap["rings"]
rings.numRings = 120
rings.raStart = 0.0
rings.projection = "TAN"
rings.pixelScale = 0.168
rings.tractOverlap = 1.0 / 60
rings.tractBuilder.name = "legacy"
rings.tractBuilder["legacy"].patchInnerDimensions = (4000, 4000)
rings.tractBuilder["legacy"].patchBorder = 100
