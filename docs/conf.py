"""Sphinx configuration of the obs_vista documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are
errors).  The configuration, dataset-type and command-line reference pages are
generated from the code at the start of every build by the local extension in
``_ext/obs_vista_reference.py``.
"""

import sys
from importlib.metadata import version as _version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "obs_vista"
author = "obs_vista developers"
copyright = "obs_vista developers; GPL-3.0-or-later"
release = _version("lsst-obs-vista")
version = release

extensions = [
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_automodapi.automodapi",
    "myst_nb",
    "obs_vista_reference",
]

# The tutorial notebook is shown with the outputs saved in it: the docs build does not run
# it (it needs the demo repository); tests/test_demo.py runs it on every test run.
nb_execution_mode = "off"

exclude_patterns = ["_build", "README.md", "**.ipynb_checkpoints"]
html_theme = "alabaster"
html_theme_options = {"page_width": "1200px", "sidebar_width": "240px"}
html_static_path: list[str] = []

# automodapi makes one page per class and function; numpydoc would list the
# members a second time on each.
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False

# Links to Python and astropy; none is needed for the build to pass, so a
# machine without network still builds (the inventories are then skipped).
intersphinx_mapping: dict[str, tuple[str, None]] = {}
default_role = "obj"
nitpicky = False
