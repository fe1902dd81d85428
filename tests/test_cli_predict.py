"""genrelens.cli.predict: `genrelens predict` for one movie and for a table (the tiny naive model), and its
argument checks (exit 2 before any model is loaded)."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from genrelens.cli import app


def _run(*args):
    return CliRunner().invoke(app, ["predict", *args])


def test_one_movie_as_json(tiny_naive_dir):
    r = _run("--model-dir", str(tiny_naive_dir), "--plot", "A heist goes wrong.", "--title", "Heat", "--json")
    assert r.exit_code == 0, r.output
    answer = json.loads(r.stdout[r.stdout.index("{"):])
    assert answer["genres"] and answer["model"] == "naive" and set(answer["scores"]) == set(answer["thresholds"])
    assert "title ignored: this model does not read titles" in answer["warnings"]


def test_one_movie_as_a_table(tiny_naive_dir):
    r = _run("--model-dir", str(tiny_naive_dir), "--plot", "A heist.")
    assert r.exit_code == 0 and "confidence" in r.output and "yes" in r.output


def test_a_table(tiny_naive_dir, tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b"], "plot": ["A heist.", "Love."], "year": [1999, 2001]}).to_csv(src, index=False)
    r = _run("--model-dir", str(tiny_naive_dir), "--input", str(src), "--columns", "none", "--no-progress")
    assert r.exit_code == 0, r.output
    out = pd.read_csv(tmp_path / "in.predictions.csv")
    assert out["id"].tolist() == ["a", "b"] and "year" not in out.columns and "wrote 2 rows" in r.output


def test_one_movie_names_a_poster_url_intact_as_tables_do(tiny_model_dir):
    """``--poster URL`` was read as a path (``https:/image...``, a slash lost) and reported as a missing file; it is
    now named as a URL that is not fetched, as a table's poster column names it (a model that reads posters)."""
    url = "https://image.tmdb.org/t/p/w185/abc.jpg"
    r = _run("--model-dir", str(tiny_model_dir), "--plot", "A heist goes wrong.", "--poster", url, "--json")
    assert r.exit_code == 0, r.output
    warnings = json.loads(r.stdout[r.stdout.index("{"):])["warnings"]
    assert warnings == [f"poster ignored: poster is a URL ({url!r}), which genrelens does not fetch: download the "
                        "image and give its file path to --poster"]
    assert "https:/image" not in r.output and "not found" not in r.output


def test_a_table_summary_counts_what_was_scored_and_progress_ends_at_the_rows_read(tiny_naive_dir, tmp_path):
    """A ';' export with a blank line and an unreadable row: the summary said "scored 3" of 3 rows one of which was
    not scored, and the progress line "3/4 stopped" (the blank line counted in the total, as if interrupted)."""
    src = tmp_path / "export.csv"
    src.write_text("ID;Name;Synopsis\na;Heat;A heist goes wrong.\n\nb;Love;Two strangers meet.\n"
                   "c;Odd;too;many;fields\n")
    r = _run("--model-dir", str(tiny_naive_dir), "--input", str(src), "--output", str(tmp_path / "out.csv"))
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "scoring: 3/3 done" in out and "stopped" not in out
    assert "wrote 3 rows" in out and "2 scored, 1 not scored" in out and "scored 3" not in out
    assert "1 row(s) with problems (1 not scored)" in out
    assert pd.read_csv(tmp_path / "out.csv")["error"].notna().sum() == 1
    src.write_text("ID;Name;Synopsis\na;Heat;A heist goes wrong.\n;;\n")  # an all-empty row: no id
    r = _run("--model-dir", str(tiny_naive_dir), "--input", str(src), "--output", str(tmp_path / "out2.csv"))
    assert r.exit_code == 0 and "(no id)" in r.output, r.output


@pytest.mark.parametrize(("args", "message"), [
    ([], "give --plot TEXT"),
    (["--plot", "x", "--input", "t.csv"], "not both"),
    (["--plot", "x", "--output", "o.csv"], "go with --input"),
    (["--plot", "x", "--review-only"], "--review-only goes with --input"),
    (["--plot", "x", "--review-below", "0.5", "--review-band", "0.1"], "not both"),
    (["--plot", "x", "--engine", "ray"], "--engine ray goes with --input"),
    (["--plot", "x", "--explain-dir", "d"], "--explain-dir goes with --explain"),
    (["--input", "t.csv", "--json"], "--json prints one movie's prediction"),  # it was silently ignored
])
def test_argument_errors_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = _run("--model-dir", str(tmp_path / "no-model"), *args)
    assert r.exit_code == 2 and message in " ".join(r.output.split())


def test_a_bad_input_table_is_refused_before_the_model_loads(tmp_path):
    r = _run("--model-dir", str(tmp_path / "no-model"), "--input", str(tmp_path / "none.csv"))
    assert r.exit_code == 2 and "input not found" in r.output


def test_a_title_with_an_unreadable_poster_names_the_poster_problem(tiny_naive_dir, tmp_path):
    """--title with a poster that cannot be read, for a model that reads no titles: the refusal names the poster's
    problem too (it said "give --plot and/or --poster" to someone who had given --poster)."""
    url = "https://x.org/a.jpg"
    r = _run("--model-dir", str(tiny_naive_dir), "--title", "Heat", "--poster", url)
    assert r.exit_code == 2 and "does not read titles" in r.output
    assert "poster is a URL" in " ".join(r.output.split()), r.output
