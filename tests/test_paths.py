"""genrelens.paths: default folders honour GENRELENS_HOME, GENRELENS_MODEL_DIR and GENRELENS_CACHE."""

from pathlib import Path

from genrelens import paths


def _clear(monkeypatch):
    for name in (paths.ENV_HOME, paths.ENV_MODEL_DIR, paths.ENV_CACHE):
        monkeypatch.delenv(name, raising=False)


def test_home_moves_model_and_cache(monkeypatch, tmp_path):
    _clear(monkeypatch)
    monkeypatch.setenv(paths.ENV_HOME, str(tmp_path / "home"))
    assert paths.home_dir() == tmp_path / "home"
    assert paths.default_model_dir() == tmp_path / "home" / "models" / "default"
    assert paths.default_cache_dir() == tmp_path / "home" / "cache"


def test_model_dir_and_cache_variables_win_over_home(monkeypatch, tmp_path):
    _clear(monkeypatch)
    monkeypatch.setenv(paths.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setenv(paths.ENV_MODEL_DIR, str(tmp_path / "m"))
    monkeypatch.setenv(paths.ENV_CACHE, "~/c")
    assert paths.default_model_dir() == tmp_path / "m"
    assert paths.default_cache_dir() == Path("~/c").expanduser()


def test_without_variables_the_platform_folders(monkeypatch):
    from platformdirs import user_cache_path, user_data_path

    _clear(monkeypatch)
    monkeypatch.setenv(paths.ENV_MODEL_DIR, "")  # empty counts as unset
    assert paths.home_dir() == user_data_path("genrelens", appauthor=False)
    assert paths.default_model_dir() == paths.home_dir() / "models" / "default"
    assert paths.default_cache_dir() == user_cache_path("genrelens", appauthor=False)
