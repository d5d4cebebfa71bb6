#!/usr/bin/env python
"""Single-frame processing under the name users of the Gen2 stack know: builds,
prints and runs the ``pipetask run`` of the instrument's ProcessCcd pipeline.

Usage: processCcd.py REPO [--id KEY=VALUE...] [-d QUERY] [-i COLL,...] [-o COLL] [-C FILE] [-c KEY=VALUE] [-j N]
       [--log-level LEVEL]
"""

from lsst.obs.vista.cli.process_ccd import main

if __name__ == "__main__":
    main()
