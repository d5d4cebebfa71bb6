# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# VistaIsrTask (label ``isr``, _DefaultName "isr") overrides for VIRCAM, applied by
# lsst.obs.vista.Vircam to every pipeline that declares the instrument.  They live in
# config/vircam/ rather than config/ so that they never reach the DECam task, which shares
# the assembly core and the "isr" name.
from lsst.obs.vista.isr import BackgroundVarianceTask, ConfidenceMapVarianceTask

# CASU stacks: variance from the confidence map, SKYNOISE and the nominal gains (the model
# is derived in ConfidenceMapVarianceTask's docstring); retarget it in your own override
# (e.g. `-C isr:my_isr.py` with config.variance.retarget(BackgroundVarianceTask)).
config.variance.retarget(ConfidenceMapVarianceTask)
# CASU normalises confidence maps to a median of 100 over the stack.
config.variance.nominalConfidence = 100.0

# Pixels below 20% of the nominal confidence (the stack edges covered by one or two of six
# jittered exposures) are BAD and LOW_CONFIDENCE.
config.masking.lowConfidenceThreshold = 20.0

# Without the confidence map the depth of each pixel is unknown; measuring the noise of the
# background in 128-pixel cells follows the drop in coverage towards the stack edges, which
# a header-only model (uniform SKYNOISE) cannot.
config.fallbackVariance.retarget(BackgroundVarianceTask)

# CASU writes 0 where no exposure covered a stack pixel (the sky is not subtracted, so a real
# pixel is never exactly 0).  With the confidence map this is redundant; without it, it is
# the only record of where the stack has no data.
config.masking.noDataValues = [0.0]

# A pawprint stack averages jittered exposures after bilinear resampling: a star saturated in
# some of them stays below the single-read level, and resampling spreads saturated pixels into
# their neighbours.  So pixels from 90% of the level are SATURATED, grown by one pixel.
config.masking.saturationMargin = 0.9
config.masking.saturationGrow = 1

# The confidence model reproduces the true variance to ~1%; a 5% mismatch between the
# background noise and the variance plane means wrong inputs (gain, SKYNOISE, confidence).
config.noiseCheck.tolerance = 0.05

# m_AB - m_Vega of the VISTA system, broad bands: the offsets published by CASU
# (Gonzalez-Fernandez et al. 2018, MNRAS 474, 5459).
config.vegaToAb = {"z": 0.502, "y": 0.600, "J": 0.916, "H": 1.366, "Ks": 1.827}
