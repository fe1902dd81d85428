"""genrelens.version: one version string, the same as the project's metadata in pyproject.toml."""

import tomllib
from pathlib import Path

from packaging.version import Version

from genrelens.version import __version__


def test_version_is_pep440_and_matches_pyproject():
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert Version(__version__) >= Version("0.1.0")
    assert project["version"] == __version__
