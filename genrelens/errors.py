"""Exceptions that the CLI and the service turn into clear messages (never a traceback)."""


class GenrelensError(Exception):
    """Base class for user-facing errors."""


class DataError(GenrelensError):
    """The movie table cannot be read or lacks what is needed."""


class PosterError(GenrelensError):
    """A poster is missing, unreadable, not an image, too large, or outside the data folder."""


class ModelError(GenrelensError):
    """A model directory is missing, incomplete or unsafe to load."""


class InputError(GenrelensError, ValueError):
    """Movies given to the Python API could not be read as given (``problems="raise"``)."""


class InputWarning(UserWarning):
    """Movies given to the Python API were scored with less than they were given (an unreadable poster, no
    usable input): ``GenreClassifier.predict``/``predict_proba`` warn with this by default."""
