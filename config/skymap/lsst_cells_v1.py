# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# Rubin's skymap: 120 rings over the whole sky, TAN tracts at 0.2 arcsec/pixel
# overlapping by 1 arcmin, cut into patches of 20x20 cells of 150 pixels (cell
# border 50 pixels) with one cell of patch border.  Same tract and patch IDs
# and pixel grids as the Rubin stack's lsst_cells_v1.
config.name = "lsst_cells_v1"
config.skyMap.name = "rings"
rings = config.skyMap["rings"]
rings.numRings = 120
rings.raStart = 0.0
rings.projection = "TAN"
rings.pixelScale = 0.2
rings.tractOverlap = 1.0 / 60
rings.tractBuilder.name = "cells"
rings.tractBuilder["cells"].cellInnerDimensions = (150, 150)
rings.tractBuilder["cells"].cellBorder = 50
rings.tractBuilder["cells"].numCellsPerPatchInner = 20
rings.tractBuilder["cells"].numCellsInPatchBorder = 1
