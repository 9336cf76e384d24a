"""Packaging facts a new user relies on: one version, a license file, PySocks installed with the package.

(.ci/sdist-check builds the sdist, installs it in a fresh venv and runs a
smoke test; these are the quick checks of the files it starts from.)
"""

from __future__ import annotations

import configparser
import os
import re
from importlib import metadata

import gorillaws
from tests.test_cli import ROOT, run_cli


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"), encoding="utf-8")
    return cfg


def test_the_version_lives_in_one_place() -> None:
    cfg = _setup_cfg()
    assert cfg["metadata"]["version"].strip() == "attr: gorillaws.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]\d+|rc\d+|\.dev\d+)?", gorillaws.__version__)
    assert metadata.version("gorillaws") == gorillaws.__version__
    assert run_cli("--version").stdout.decode().splitlines()[0] == f"gorillaws {gorillaws.__version__}"
    # No other file states it.
    for name in ("setup.py", "pyproject.toml", "gorillaws/cli.py", "gorillaws/__main__.py"):
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            assert gorillaws.__version__ not in f.read(), name


def test_license_file_matches_the_declared_license() -> None:
    cfg = _setup_cfg()
    assert cfg["metadata"]["license"].strip() == "BSD-3-Clause"
    assert cfg["metadata"]["license_files"].strip() == "LICENSE"
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("BSD 3-Clause License")
    assert "the gorillaws authors" in text
    assert "Neither the name of the copyright holder" in text  # the third clause


def test_pysocks_is_a_dependency_and_the_socks_extra_still_exists() -> None:
    cfg = _setup_cfg()
    requires = [r.strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip()]
    assert any(r.lower().startswith("pysocks") for r in requires), requires
    extras = cfg["options.extras_require"]
    assert extras["socks"].strip() == ""  # an alias: old install commands keep working
    installed = metadata.requires("gorillaws") or []
    assert any(r.lower().startswith("pysocks") and "extra" not in r for r in installed), installed


def test_the_sdist_manifest_ships_the_test_helpers() -> None:
    with open(os.path.join(ROOT, "MANIFEST.in"), encoding="utf-8") as f:
        lines = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
    for needed in ("graft tests", "graft examples", "graft docs", "include LICENSE README.md CHANGELOG.md pyproject.toml setup.cfg setup.py"):
        assert needed in lines, needed
