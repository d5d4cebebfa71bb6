#!/usr/bin/env python
"""Objects of the coadds under the name users of the Gen2 stack know:
builds, prints and runs the ``pipetask run`` commands of the instrument's
DRP.yaml#objects, #step4 (and #external) into one output collection.

Usage: multiBandDriver.py REPO --skymap NAME -i COLL,... -o COLL [--tract T...] [--instrument INST]
       [--external NAME] [-d QUERY] [-c LABEL:KEY=VALUE] [-j N] [--dry-run] [--log-level LEVEL]
"""

from lsst.obs.vista.cli.multi_band_driver import main

if __name__ == "__main__":
    main()
