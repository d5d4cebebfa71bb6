#!/usr/bin/env python
"""Ingest reduced products into a butler repository under the name users of
the Gen2 stack know: CASU VISTA products (``butler ingest-casu``) and DECam CP
instcal trios (``butler ingest-instcal``).

Usage: ingestImages.py REPO PATH... [--transfer MODE] [--processes N] [--instrument NAME] [--log-level LEVEL]
"""

from lsst.obs.vista.cli.ingest_images import main

if __name__ == "__main__":
    main()
