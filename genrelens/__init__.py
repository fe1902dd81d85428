"""genrelens: tell a movie's genres from its plot summary and its poster."""

from genrelens.version import __version__

__all__ = ["GenreClassifier", "__version__"]


def __getattr__(name: str):  # lazy: `import genrelens` stays cheap (no torch import)
    if name == "GenreClassifier":
        from genrelens.predict import GenreClassifier

        return GenreClassifier
    raise AttributeError(name)
