# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# A test-scale rings skymap: 4 rings (36-degree ring height), 36 arcsec pixels,
# a 1-degree overlap and 1000-pixel legacy patches: 42 tracts of 4x4 patches,
# quick to register, with the same rules as the full-sky skymaps.
config.name = "small_rings"
config.skyMap.name = "rings"
rings = config.skyMap["rings"]
rings.numRings = 4
rings.raStart = 10.0
rings.projection = "TAN"
rings.pixelScale = 36.0
rings.tractOverlap = 1.0
rings.tractBuilder.name = "legacy"
rings.tractBuilder["legacy"].patchInnerDimensions = (1000, 1000)
rings.tractBuilder["legacy"].patchBorder = 50
