"""Sphinx configuration for the API reference (``docs/api/``), generated from the docstrings.

Build it with ``.ci/docs`` (warnings are errors there), or by hand:
``python3 -m sphinx -b html docs /tmp/gorillaws-api``.  Only ``docs/api/*.rst``
belongs to this build; the Markdown pages beside it are read on GitHub and
tested by ``tests/test_docs.py``.
"""

from __future__ import annotations

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the checkout's gorillaws, not an installed one

from gorillaws import __version__  # noqa: E402

project = "gorillaws"
author = "the gorillaws authors"
copyright = "the gorillaws authors"  # noqa: A001 (Sphinx's name)
version = release = __version__

extensions = ["sphinx.ext.autodoc"]
root_doc = "api/index"
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build"]
templates_path: list = []

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The optional extras' modules import their package at the top: when it is
# not installed, autodoc documents them against a stand-in.
autodoc_mock_imports = [
    name for name in ("flask", "werkzeug", "redis", "google.protobuf", "gunicorn")
    if importlib.util.find_spec(name.split(".")[0]) is None
]

html_theme = "alabaster"
html_title = f"gorillaws {__version__} API reference"
html_show_sourcelink = False
