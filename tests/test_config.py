"""genrelens.config: RunConfig checks names and ranges, fills model defaults, and round-trips its files."""

import json

import pytest

from genrelens.config import RANGES, RunConfig, read_config_file


def test_model_defaults_fill_unset_fields():
    cfg = RunConfig(model="tfidf")
    assert cfg.lexical is True and cfg.windows == 1 and cfg.window_pooling == "mean"
    assert RunConfig(model="integrated").lexical is False
    # the text stage's epochs: 2 for catalogue (docs/results.md), 4 for the study's models; a set value wins
    assert RunConfig(model="catalogue").ft_epochs == 2 and RunConfig(model="integrated").ft_epochs == 4
    assert RunConfig(model="catalogue", ft_epochs=4).ft_epochs == 4


def test_a_saved_config_keeps_the_epochs_it_trained_with(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": "catalogue", "ft_epochs": 4}))  # a catalogue model trained before the change
    assert RunConfig.load(path).ft_epochs == 4
    RunConfig(model="catalogue").save(path)
    assert json.loads(path.read_text())["ft_epochs"] == 2 and RunConfig.load(path).ft_epochs == 2


@pytest.mark.parametrize(("kw", "message"), [
    ({"model": "bert"}, "unknown model 'bert'"),
    ({"loss": "mse"}, "unknown loss"),
    ({"dropout": 1.0}, r"dropout = 1.0 is out of range: need 0.0 <= dropout < 1.0"),
    ({"lr": 0.0}, r"need 0.0 < lr"),
    ({"epochs": 2.5}, "epochs must be an integer"),
    ({"hidden": True}, "hidden must be an integer"),
    ({"labels": "top0"}, "K >= 1"),
    ({"labels": "Drama,,Comedy"}, "empty label name"),
    ({"split_fractions": (0.5, 0.5, 0.5)}, "sum to 1"),
    ({"windows": 2, "max_length": 64, "window_stride": 40}, "at most max_length / 2"),
    ({"model": "poster", "title": True}, "title is read as text"),
    ({"model": "tfidf", "lexical": False}, "lexical cannot be false"),
    ({"precision": "fp16"}, "training precision"),
    ({"ft_layers": 99}, "transformer layers"),
])
def test_bad_values_are_refused_with_their_reason(kw, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**kw)


def test_every_range_accepts_its_bounds_where_inclusive():
    for name, (kind, low, _, low_in, _) in RANGES.items():
        if low is not None and low_in:
            RunConfig(**{name: kind(low)})


def test_json_and_toml_round_trip(tmp_path):
    cfg = RunConfig(model="naive", labels=["Drama", "Comedy"], seed=3, columns={"plot": "overview"})
    cfg.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == cfg
    (tmp_path / "run.toml").write_text(cfg.to_toml(), encoding="utf-8")
    assert RunConfig(**read_config_file(tmp_path / "run.toml")) == cfg


def test_old_configs_read_fp32_and_no_titles_and_bad_files_say_why(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps({"model": "naive"}))
    old = RunConfig.load(tmp_path / "old.json")
    assert old.precision == "fp32" and old.title is False
    (tmp_path / "bad.json").write_text(json.dumps({"modle": "naive"}))
    with pytest.raises(ValueError, match="unknown config key.*modle"):
        read_config_file(tmp_path / "bad.json")
    (tmp_path / "broken.toml").write_text("model = ")
    with pytest.raises(ValueError, match="not a valid TOML"):
        read_config_file(tmp_path / "broken.toml")
    with pytest.raises(ValueError, match="not found"):
        read_config_file(tmp_path / "none.toml")
