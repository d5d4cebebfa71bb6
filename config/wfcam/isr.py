# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# VistaIsrTask (label ``isr``) overrides for WFCAM, applied by lsst.obs.vista.Wfcam to every
# pipeline that declares the instrument.
from lsst.obs.vista.isr import ConfidenceMapVarianceTask, MetadataVarianceTask

# CASU stacks: variance from the confidence map, SKYNOISE and the nominal gains, as for VIRCAM.
# SKYNOISE is measured on the interleaved stack itself, so the factor k of the resampling that
# combining the interleaved frames correlates neighbours with follows from it in the same way
# (ConfidenceMapVarianceTask's docstring).
config.variance.retarget(ConfidenceMapVarianceTask)
# CASU normalises confidence maps to a median of 100 over the stack.
config.variance.nominalConfidence = 100.0

# As for VIRCAM: pixels below 20% of the nominal confidence are BAD and LOW_CONFIDENCE.
config.masking.lowConfidenceThreshold = 20.0

# A WFCAM Science Archive cutout comes without its confidence map: the variance is then SKYNOISE
# and the header's noise parameters, uniform in depth.  The cutout is small and usually well
# inside the stack, where the depth is nominal.
config.fallbackVariance.retarget(MetadataVarianceTask)

# CASU writes 0 where no exposure covered a stack pixel.
config.masking.noDataValues = [0.0]

# As for VIRCAM: a stack averages (interleaved, resampled) exposures, so a partly saturated star
# stays below the level and saturation spreads to neighbours: SATURATED from 90% of the level,
# grown by one pixel.
config.masking.saturationMargin = 0.9
config.masking.saturationGrow = 1

# As for VIRCAM: a 5% mismatch between the background noise and the variance plane means wrong
# inputs (gain, SKYNOISE, confidence).
config.noiseCheck.tolerance = 0.05

# m_AB - m_Vega of the WFCAM (UKIDSS) system: Hewett et al. 2006, MNRAS 367, 454, Table 7.
# Bands absent (H2, Br) keep only the Vega zero point in the metadata.
config.vegaToAb = {"z": 0.528, "y": 0.634, "J": 0.938, "H": 1.379, "K": 1.900}
