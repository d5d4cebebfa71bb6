# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# DecamCpIsrTask (label ``isr``) overrides for DECam CP instcal products, applied by
# lsst.obs.vista.DecamCp to every pipeline that declares the instrument.  The task's own
# defaults already read the weight map (variance = 1/weight) and decode the DQ mask by PLVER;
# the core's saturation rule (pixels at or above the lower amplifier's SATURATA/B, no growth)
# suits a CP image, one exposure neither averaged nor resampled, whose DQ mask already marks
# saturation and bleed trails.
from lsst.obs.vista.isr import MetadataVarianceTask

# Without a weight map: AVSKY, AVSIG (the CP's sky level and rms), GAINA/B and RDNOISEA/B.
config.fallbackVariance.retarget(MetadataVarianceTask)

# Cutouts can be ~100 pixels on a side with a bright star and a galaxy whose wings fill them:
# the background is an 11-pixel running median, which follows the wings, and the check
# reports a ratio from as few as 1000 background pixels (a ~3% estimate) rather than none.
config.noiseCheck.statistics.backgroundFilterSize = 11
config.noiseCheck.minPixels = 1000

# The CP weight maps agree with the background noise to a few percent (0.99-1.07 measured
# with sources masked); a ratio 10% off means the weight map is wrong.
config.noiseCheck.tolerance = 0.1
