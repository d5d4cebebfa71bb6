# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# One tract on the worked example's synthetic VIRCAM field (the simulator's
# default tile centre, RA 34.5, Dec -5.0: the VIDEO XMM-LSS field), 1 degree
# in radius (a VIRCAM tile is 1.5 x 1.2 degrees), on lsst_cells_v1's pixel
# scale and cells so that its coadds compare with Rubin's cell by cell.
config.name = "discrete_example"
config.skyMap.name = "discrete"
field = config.skyMap["discrete"]
field.raList = [34.5]
field.decList = [-5.0]
field.radiusList = [1.0]
field.projection = "TAN"
field.pixelScale = 0.2
field.tractOverlap = 1.0 / 60
field.tractBuilder.name = "cells"
field.tractBuilder["cells"].cellInnerDimensions = (150, 150)
field.tractBuilder["cells"].cellBorder = 50
field.tractBuilder["cells"].numCellsPerPatchInner = 20
field.tractBuilder["cells"].numCellsInPatchBorder = 1
