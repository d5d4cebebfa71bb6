# ruff: noqa: F821  (pex_config override files are executed with `config` defined)
# CalibrateImageTask (label ``calibrateImage``) overrides for DECam CP instcal products, applied
# by lsst.obs.vista.DecamCp to every pipeline that declares the instrument.
from lsst.obs.vista.calibrate import ColorTermConfig

# Gaia (G, BP-RP) to DECam AB magnitudes: the polynomials in BP-RP fitted by Rongpu Zhou
# (2020-04-12) that the Legacy Surveys use (legacypipe, py/legacypipe/reference.py,
# gaia_to_decam), valid for -0.6 < BP-RP < 4.1, with BP-RP = 1.4 for stars without colour.
_GAIA_TO_DECAM = {
    "g": [-0.1178631039, 0.3650113495, 0.5608615360, -0.2850687702, -1.0243473939, 1.4378375491,
          0.0679401731, -1.1713172509, 0.9107811975, -0.3374324004, 0.0683946390, -0.0073089582,
          0.0003230170],
    "r": [0.1139078673, -0.2868955307, 0.0013196434, 0.1029151074, 0.1196710702, -0.3729031390,
          0.1859874242, 0.1370162451, -0.1808580848, 0.0803219195, -0.0180218196, 0.0020584707,
          -0.0000953486],
    "i": [0.3396481660, -0.6491867119, -0.3330769819, 0.4381097294, 0.5752125977, -1.4746570523,
          1.2979140762, -0.6371018151, 0.1948940062, -0.0382055596, 0.0046907449, -0.0003296841,
          0.0000101480],
    "z": [0.4811198057, -0.9990015041, 0.1403990019, 0.2150988888, -0.2917655866, 0.1326831887,
          -0.0259205004, 0.0018548776],
}
for _band, _coefficients in _GAIA_TO_DECAM.items():
    config.photometry.colorTerms[_band] = ColorTermConfig(
        primary="phot_g_mean_mag",
        colorColumns=["phot_bp_mean_mag", "phot_rp_mean_mag"],
        coefficients=_coefficients,
        colorRange=[-0.6, 4.1],
        defaultColor=1.4,
    )

# Gaia stars brighter than G ~ 17 saturate DECam in a typical exposure; the saturated-centre
# flag already keeps them out, and the CP WCS is good to ~0.1 arcsec.
config.astrometry.searchRadius = 3.0

# CP cutouts can be ~100 pixels on a side: a 64-pixel mesh still gives a few cells.
config.background.meshSize = 64
