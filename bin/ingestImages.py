#!/usr/bin/env python
"""Ingest CASU VISTA products into a butler repository (``butler ingest-casu``
under the name users of the Gen2 stack know).

Usage: ingestImages.py REPO PATH... [--transfer MODE] [--processes N]
"""

from lsst.obs.vista.cli.ingest_images import main

if __name__ == "__main__":
    main()
