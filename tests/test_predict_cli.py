"""``genrelens predict``: one movie (table or JSON) and whole tables (CSV/JSONL/Parquet, errors, resume)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from genrelens.batch import parts_dir, predict_table
from genrelens.cli import app
from genrelens.predict import REVIEW_REASON_TEXT, GenreClassifier

runner = CliRunner(env={"COLUMNS": "200"})
PLOT = "Two rival magicians in Victorian London wage a dangerous war of secrets and obsession."


class Counting:
    """Wraps a classifier: counts the rows it scores; raises KeyboardInterrupt on call ``interrupt_at``."""

    def __init__(self, clf: GenreClassifier, interrupt_at: int | None = None):
        self.clf, self.interrupt_at, self.calls, self.rows = clf, interrupt_at, 0, 0

    def __getattr__(self, name):
        return getattr(self.clf, name)

    def forward(self, inputs, **kw):  # the pipeline's model call (GenreClassifier.predict_movies)
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.rows += len(inputs.texts)
        return self.clf.forward(inputs, **kw)


@pytest.fixture(scope="module")
def clf(tiny_model_dir) -> GenreClassifier:
    return GenreClassifier.load(tiny_model_dir)


@pytest.fixture
def use(monkeypatch, clf):
    """``use(x)``: make ``GenreClassifier.load`` return ``x`` (the model is loaded once per module)."""

    def install(model=clf):
        monkeypatch.setattr(GenreClassifier, "load", classmethod(lambda cls, *a, **k: model))
        return model

    install()
    return install


@pytest.fixture(scope="module")
def table(subset_csv, tmp_path_factory) -> Path:
    """12 real movies beside their posters, with four bad rows; no genres column (not needed to predict)."""
    folder = tmp_path_factory.mktemp("batch")
    shutil.copytree(subset_csv.parent / "posters", folder / "posters")
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    has_plot, has_poster = df["plot"] != "", df["poster"] != ""
    df = pd.concat([df[has_plot & has_poster].head(8), df[~has_plot & has_poster].head(4)])
    df = df.drop(columns=["genres"]).reset_index(drop=True)
    (folder / "posters" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    df.loc[1, "poster"] = "posters/corrupt.jpg"  # has a plot: scored from it, reported
    df.loc[2, ["plot", "poster"]] = ["", ""]  # nothing at all
    df.loc[9, "poster"] = "../outside.jpg"  # poster-only row whose path leaves the folder
    df.loc[10, "poster"] = "posters/missing.jpg"  # poster-only row, file missing
    df.to_csv(folder / "movies.csv", index=False)
    return folder / "movies.csv"


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        df = pd.read_csv(path, dtype={"id": str, "genres": str, "error": str, "warnings": str, "review_reasons": str})
    elif path.suffix == ".jsonl":
        df = pd.read_json(path, lines=True, dtype={"id": str})
    else:
        df = pd.read_parquet(path)
    return df.assign(genres=df["genres"].fillna(""))


# --- one movie ------------------------------------------------------------------------------------------


def test_predict_one_table_and_json(use, clf, subset_csv):
    poster = sorted((subset_csv.parent / "posters").glob("*.jpg"))[0]
    r = runner.invoke(app, ["predict", "--plot", PLOT])
    assert r.exit_code == 0, r.output
    assert all(g in r.output for g in clf.labels) and "probability" in r.output
    r = runner.invoke(app, ["predict", "--plot", PLOT, "--poster", str(poster), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["model"] == clf.name and set(out["scores"]) == set(clf.labels) and out["genres"]
    proba, _ = clf.score([PLOT], [str(poster)])
    assert [out["scores"][g] for g in clf.labels] == pytest.approx(proba[0].tolist(), abs=1e-4)


def test_predict_one_real_load(tiny_model_dir):
    """Without the patched loader: --model-dir is honored."""
    r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--plot", PLOT, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["genres"]
    r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir / "nope"), "--plot", PLOT])
    assert r.exit_code == 2 and "no model" in r.output


def test_predict_one_names_every_review_reason_in_words(tiny_model_dir):
    """The one-movie text output said "an input was ignored" for any reason but low confidence (a recipe's
    out_of_distribution included): it names each reason of the answer, as the JSON codes say."""
    recipe = ("Preheat the oven to 180 degrees. Whisk 200 g of flour, 150 g of sugar, 3 eggs and 100 g of melted "
              "butter until smooth, pour into a greased tin and bake for 30 minutes.")
    for plot in (recipe, "love"):
        r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--plot", plot, "--json"])
        codes = json.loads(r.stdout)["review_reasons"]
        text = " ".join(runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--plot", plot])
                        .output.split())
        assert codes and "review:" in text
        assert ("an input could not be used" in text) == ("input_ignored" in codes)
        for code in codes:
            assert REVIEW_REASON_TEXT[code] in text, (code, text)


def test_predict_one_bad_input(use, tmp_path):
    """A poster alone that cannot be read is answered by the pipeline, as REST and a table row answer it: not
    scored, the poster named as ignored."""
    bad = tmp_path / "poster.jpg"
    bad.write_bytes(b"not an image")
    not_scored = "no usable input for this model: not scored"
    for args, message in [([], "give --plot"), (["--plot", "  "], "--plot is empty: give --plot"),
                          (["--plot", "", "--title", ""], "--plot is empty; --title is empty: give"),
                          (["--poster", str(bad)], "not an image"),
                          (["--poster", str(bad)], f"poster ignored: poster {str(bad)!r} is not an image; "
                                                   f"{not_scored}"),
                          (["--poster", str(tmp_path / "nope.jpg")], "not found"),
                          (["--poster", "https://example.org/p.jpg"], "poster is a URL ('https://example.org/p.jpg')"),
                          (["--plot", PLOT, "--input", "x.csv"], "not both"),
                          (["--plot", PLOT, "--resume"], "go with --input")]:
        r = runner.invoke(app, ["predict", *args])
        assert r.exit_code == 2 and message in " ".join(r.output.split()), (args, r.output)


# --- tables -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_predict_table_formats_and_problem_rows(use, clf, table, tmp_path, suffix):
    out = tmp_path / f"predictions{suffix}"
    r = runner.invoke(app, ["predict", "--input", str(table), "--output", str(out), "--chunk-size", "5",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "4 row(s) with problems" in r.output and "3 not scored" in r.output
    assert out.exists() and not parts_dir(out).exists()
    assert not list(tmp_path.glob(".*.tmp"))
    df = read(out)
    src = pd.read_csv(table, dtype=str, keep_default_na=False)
    assert df["id"].tolist() == src["id"].tolist()
    assert list(df.columns) == ["id", "title", "year", "language", "source", "genres",  # the catalogue's columns
                                *[f"p_{g}" for g in clf.labels], "confidence", "review", "review_reasons", "warnings",
                                "error"]
    assert df["title"].tolist() == src["title"].tolist()
    err = df["error"].fillna("").astype(str)
    warnings = df["warnings"].fillna("").astype(str)
    reasons = df["review_reasons"].fillna("").astype(str)
    # issue 26 item 7: a row scored from its plot with its poster ignored is a warning, not an error
    assert err[1] == "" and warnings[1].startswith("poster ignored") and "corrupt" in warnings[1]
    assert df.loc[1, "genres"] and "input_ignored" in reasons[1].split("|") and bool(df.loc[1, "review"])
    assert "'warnings' (scored)" in r.output
    assert "no input" in err[2] and not df.loc[2, "genres"] and df.loc[2, [f"p_{g}" for g in clf.labels]].isna().all()
    assert "outside the data folder" in err[9] and not df.loc[9, "genres"]
    assert "--posters DIR" in r.output  # how to read posters kept elsewhere, said once after the problems
    assert "not found" in err[10] and not df.loc[10, "genres"]
    good = [i for i in range(len(df)) if i not in (1, 2, 9, 10)]
    assert (err[good] == "").all() and df.loc[good, "genres"].str.len().gt(0).all()
    assert (warnings[[i for i in range(len(df)) if i != 1]] == "").all()
    assert all("no_input" in reasons[i].split("|") for i in (2, 9, 10))
    probs = df.loc[good, [f"p_{g}" for g in clf.labels]].to_numpy(dtype=float)
    expected, _ = clf.score(src["plot"].tolist(), [table.parent / p if p else None for p in src["poster"]])
    np.testing.assert_allclose(probs, expected[good], atol=1e-4)
    np.testing.assert_allclose(df.loc[good, "confidence"].to_numpy(float), clf.confidence(expected[good]), atol=1e-4)
    assert df.loc[good, "review"].astype(bool).tolist() == clf.review(expected[good]).tolist()
    assert df.loc[[2, 9, 10], "review"].astype(bool).all() and df.loc[[2, 9, 10], "confidence"].isna().all()
    for g, row in zip(df.loc[good, "genres"], expected[good]):
        decided = clf.decide(row[None])[0]
        assert set(g.split("|")) == {clf.labels[j] for j in np.flatnonzero(decided)}


def test_interrupted_batch_resumes_without_rescoring(use, clf, table, tmp_path):
    out = tmp_path / "pred.csv"
    args = ["predict", "--input", str(table), "--output", str(out), "--chunk-size", "4", "--no-progress"]
    use(Counting(clf, interrupt_at=3))  # chunks 1 and 2 done, interrupted in chunk 3
    r = runner.invoke(app, args)
    assert r.exit_code == 130 and "--resume" in r.output, r.output
    assert not out.exists() and len(list(parts_dir(out).glob("part-*.parquet"))) == 2
    counting = use(Counting(clf))
    r = runner.invoke(app, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    assert counting.rows == 4 and "8 from earlier chunks" in r.output
    assert read(out)["id"].tolist() == pd.read_csv(table, dtype=str)["id"].tolist()
    assert not parts_dir(out).exists()


def test_rerun_without_resume_refuses_to_discard_saved_chunks(use, clf, table, tmp_path):
    """Issue 26 item 5: after an interruption the same command, run again, silently discarded the saved chunks."""
    out = tmp_path / "pred.csv"
    args = ["predict", "--input", str(table), "--output", str(out), "--chunk-size", "4", "--no-progress"]
    use(Counting(clf, interrupt_at=3))  # chunks 1 and 2 saved, interrupted in chunk 3
    r = runner.invoke(app, args)
    assert r.exit_code == 130 and "--resume" in r.output and "--restart" in r.output, r.output
    saved = sorted(parts_dir(out).glob("part-*.parquet"))
    assert len(saved) == 2
    counting = use(Counting(clf))
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "2 chunk(s) saved" in r.output and "--resume" in r.output and "--restart" in r.output
    assert sorted(parts_dir(out).glob("part-*.parquet")) == saved and counting.rows == 0 and not out.exists()
    r = runner.invoke(app, [*args, "--resume", "--restart"])
    assert r.exit_code == 2 and "not both" in r.output
    r = runner.invoke(app, [*args, "--restart"])
    assert r.exit_code == 0, r.output
    assert counting.rows == 12 and "from earlier chunks" not in r.output and not parts_dir(out).exists()
    assert read(out)["id"].tolist() == pd.read_csv(table, dtype=str)["id"].tolist()


def test_resume_refuses_other_settings_and_restart_starts_over(clf, table, tmp_path):
    out = tmp_path / "pred.jsonl"
    with pytest.raises(KeyboardInterrupt):
        predict_table(Counting(clf, interrupt_at=2), table, out, chunk_size=4)
    from genrelens.errors import DataError

    with pytest.raises(DataError, match="another input, model, chunk size or settings.*--restart"):
        predict_table(clf, table, out, chunk_size=6, resume=True)
    with pytest.raises(DataError, match="--resume to continue it, or with --restart"):
        predict_table(clf, table, out, chunk_size=4)  # neither: nothing is discarded silently
    assert len(list(parts_dir(out).glob("part-*.parquet"))) == 1
    counting = Counting(clf)
    summary = predict_table(counting, table, out, chunk_size=4, restart=True)
    assert counting.rows == 12 and summary.n_resumed == 0 and summary.n_rows == 12


def test_table_without_ids_and_bad_tables(use, clf, tmp_path):
    (tmp_path / "plots.jsonl").write_text("\n".join(json.dumps({"plot": p}) for p in [PLOT, "", PLOT]) + "\n")
    out = tmp_path / "o.parquet"
    r = runner.invoke(app, ["predict", "-i", str(tmp_path / "plots.jsonl"), "-o", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert df["id"].tolist() == ["1", "2", "3"] and df["error"].notna().tolist() == [False, True, False]
    (tmp_path / "bad.csv").write_text("id,title\n1,x\n")
    for args, message in [(["-i", str(tmp_path / "bad.csv")], "'plot' or a 'poster'"),
                          (["-i", str(tmp_path / "nope.csv")], "not found"),
                          (["-i", str(tmp_path / "plots.jsonl"), "-o", str(tmp_path / "o.xlsx")], "output format")]:
        r = runner.invoke(app, ["predict", *args, "--no-progress"])
        assert r.exit_code == 2 and message in r.output, (args, r.output)
