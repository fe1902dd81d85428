"""genrelens.serve.auth: where the API key comes from, which keys are refused, when an open service warns."""

import os

import pytest

from genrelens.serve.auth import (
    ENV_VAR,
    ApiKeyError,
    KeyFileWarning,
    api_key_from,
    check_key,
    is_loopback,
    open_service_warning,
)


def test_the_file_wins_over_the_variable_and_is_stripped(tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret-KEY_1\n")
    os.chmod(key, 0o600)
    assert api_key_from({ENV_VAR: "from-env"}, file=key) == "s3cret-KEY_1"
    assert api_key_from({ENV_VAR: " from-env "}) == "from-env"
    assert api_key_from({}) is None


def test_unreadable_empty_or_unsendable_keys_are_refused(tmp_path):
    with pytest.raises(ApiKeyError, match="cannot read the API key file"):
        api_key_from({}, file=tmp_path / "missing")
    with pytest.raises(ApiKeyError, match=r"\$GENRELENS_API_KEY is empty"):
        api_key_from({ENV_VAR: "  "})
    with pytest.raises(ApiKeyError, match="printable ASCII"):
        check_key("two words", "the key")
    with pytest.raises(ApiKeyError, match="printable ASCII"):
        check_key("clé", "the key")


def test_a_world_readable_key_file_warns(tmp_path):
    key = tmp_path / "key"
    key.write_text("abc")
    os.chmod(key, 0o644)
    with pytest.warns(KeyFileWarning, match="chmod 600"):
        assert api_key_from({}, file=key) == "abc"


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("[::1]", True),
                                                ("localhost", True), ("0.0.0.0", False), ("example.org", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_open_service_warning_only_for_a_network_without_a_key():
    assert open_service_warning("127.0.0.1", None) is None
    assert open_service_warning("0.0.0.0", "k") is None
    assert "without an API key" in open_service_warning("0.0.0.0", None)
