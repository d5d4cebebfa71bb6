# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# Overrides of the ``isr`` step of pipelines/VIRCAM/ProcessCcd.yaml (loaded from the pipeline with
# ``file: resource://lsst.obs.vista/config/vircam/processCcd.py``), on top of config/vircam/isr.py.

# Single-frame processing detects and measures at thresholds in units of the variance
# plane, so this pipeline trusts the measured background noise over the model: the variance
# is multiplied by (noise ratio)**2, recorded as VARIANCE_RESCALE in the output metadata,
# and a ratio further than the tolerance from 1 is still reported as a warning.
config.noiseCheck.doRescale = True
