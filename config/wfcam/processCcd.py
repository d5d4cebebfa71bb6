# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# Overrides of the ``isr`` step of pipelines/WFCAM/ProcessCcd.yaml, on top of config/wfcam/isr.py.

# Single-frame processing detects and measures at thresholds in units of the variance plane, so
# this pipeline trusts the measured background noise over the model (VARIANCE_RESCALE in the
# output metadata), as VIRCAM's does.
config.noiseCheck.doRescale = True
