"""Batch prediction on Ray Data equals the single-process `predict`, row for row."""

import shutil

import numpy as np
import pandas as pd
import pytest

from genrelens.errors import DataError
from genrelens.ray_predict import input_files


def test_inputs_need_an_id_column(tmp_path):
    pd.DataFrame({"plot": ["A heist."]}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match="'id'"):
        input_files(tmp_path)
    with pytest.raises(DataError, match="no CSV or Parquet"):
        input_files(tmp_path / "*.parquet")


def test_cli_engine_ray_needs_an_output_folder(subset_csv):
    from typer.testing import CliRunner

    from genrelens.cli import app

    r = CliRunner().invoke(app, ["predict", "--input", str(subset_csv), "--engine", "ray"])
    assert r.exit_code == 2 and "--output" in r.output
    r = CliRunner().invoke(app, ["predict", "--plot", "A heist.", "--engine", "spark"])
    assert r.exit_code == 2 and "--engine" in r.output


@pytest.mark.ray
@pytest.mark.slow
def test_ray_matches_single_process(tiny_model_dir, subset_csv, tmp_path):
    pytest.importorskip("ray")
    from genrelens.batch import predict_table
    from genrelens.predict import GenreClassifier
    from genrelens.ray_predict import predict_ray, read_output

    parts = tmp_path / "parts"  # two CSV partitions beside a copy of the posters (paths stay relative)
    shutil.copytree(subset_csv.parent / "posters", parts / "posters")
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    df = df.iloc[:160]  # every modality mix is among them; keeps the test short
    df.iloc[:70].to_csv(parts / "part-0.csv", index=False)
    df.iloc[70:].to_csv(parts / "part-1.csv", index=False)
    df.to_csv(parts / "all.csv", index=False)
    predict_table(GenreClassifier.load(tiny_model_dir, precision="fp32"), parts / "all.csv",
                  tmp_path / "single.parquet", columns="none")  # the Ray engine does not carry the other columns (yet)
    summary = predict_ray(tiny_model_dir, parts / "part-*.csv", tmp_path / "out", workers=2, num_cpus=2,
                          progress=False, precision="fp32")
    one, many = pd.read_parquet(tmp_path / "single.parquet"), read_output(tmp_path / "out")
    assert summary.n_rows == len(one) == len(many) == 160
    assert list(many.columns) == list(one.columns)
    assert list(many["id"]) == list(one["id"])
    assert list(many["genres"]) == list(one["genres"])
    assert list(many["error"].fillna("")) == list(one["error"].fillna(""))
    p = [c for c in one.columns if c.startswith("p_")]
    np.testing.assert_allclose(many[p].to_numpy(), one[p].to_numpy(), atol=1e-5, equal_nan=True)
    import ray

    assert not ray.is_initialized()  # the local instance it started is shut down


def test_ray_scorer_loads_the_precision_asked_for(tiny_model_dir):
    """``--engine ray --precision P``: each actor loads the model in P (it loaded ``auto`` whatever was asked)."""
    pytest.importorskip("ray")
    from genrelens.ray_predict import RayScorer

    assert RayScorer(str(tiny_model_dir), precision="int8").clf.precision == "int8"
    assert RayScorer(str(tiny_model_dir), precision="fp32").clf.precision == "fp32"
