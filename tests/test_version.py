"""genrelens.version: one version string, the installed package's."""

from importlib.metadata import version

from packaging.version import Version

from genrelens.version import __version__


def test_version_is_pep440_and_matches_the_installed_metadata():
    assert Version(__version__) >= Version("0.1.0")
    assert version("genrelens") == __version__
