"""genrelens.errors: the user-facing error hierarchy the CLI and the service turn into messages."""

import warnings

import pytest

from genrelens.errors import DataError, GenrelensError, InputError, InputWarning, ModelError, PosterError


@pytest.mark.parametrize("cls", [DataError, PosterError, ModelError, InputError])
def test_every_user_error_is_a_genrelens_error(cls):
    with pytest.raises(GenrelensError, match="the message"):
        raise cls("the message")


def test_input_error_is_also_a_value_error_and_the_others_are_not():
    assert issubclass(InputError, ValueError)
    assert not issubclass(DataError, ValueError) and not issubclass(ModelError, ValueError)


def test_input_warning_is_a_user_warning_that_filters_can_catch():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.warn("poster unreadable", InputWarning, stacklevel=1)
    assert [w.category for w in seen] == [InputWarning] and issubclass(InputWarning, UserWarning)
