#!/usr/bin/env python
"""Warps and cell-based coadds under the name users of the Gen2 stack know:
builds, prints and runs the ``pipetask run`` of the instrument's DRP.yaml#step3.

Usage: coaddDriver.py REPO --skymap NAME -i COLL,... -o COLL [--tract T...] [--instrument INST] [-d QUERY]
       [-c LABEL:KEY=VALUE] [-j N] [--dry-run] [--log-level LEVEL]
"""

from lsst.obs.vista.cli.coadd_driver import main

if __name__ == "__main__":
    main()
