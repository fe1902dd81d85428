"""Catalogue teams' own tables, messy as they come (issue 26): other genre separators, other column names,
semicolon/tab files and spreadsheets, poster URLs, label typos, unlabelled and title-only tables.

Every table is built from real rows of the default data set, in a temporary folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import DATA, train_tiny

from genrelens.config import RunConfig, read_config_file
from genrelens.data.labels import split_genres
from genrelens.data.reader import iter_table_chunks
from genrelens.data.stats import table_stats
from genrelens.data.table import clean_table, id_problems, load_table
from genrelens.data.validate import exit_code, render_validation, result_lines, validate_table
from genrelens.errors import DataError, PosterError

pytestmark = pytest.mark.skipif(not DATA.exists(), reason="default data set not found")


def real_rows(n: int = 100, seed: int = 1) -> pd.DataFrame:
    """``n`` real movies with a plot and a poster (as the default data holds them: genres ``|``-joined)."""
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    both = df[(df["plot"] != "") & (df["poster"] != "")]
    return both.sample(n, random_state=seed).reset_index(drop=True)


def write(df: pd.DataFrame, folder: Path, name: str = "movies.csv", posters: bool = True, **to_csv) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    column = next((c for c in ("poster", "poster_path") if c in df.columns), None)
    if posters and column:
        (folder / "posters").mkdir(exist_ok=True)
        for rel in df[column][df[column] != ""]:
            shutil.copy(DATA.parent / rel, folder / rel)
    path = folder / name
    if path.suffix == ".xlsx":
        df.to_excel(path, index=False)
    else:
        df.to_csv(path, index=False, **to_csv)
    return path


# ------------------------------------------------------------------------------------- item 2: genre separators


@pytest.mark.parametrize("sep", [", ", ",", "; ", " / "])
def test_genres_in_another_convention_read_as_pipes(tmp_path: Path, sep: str) -> None:
    rows = real_rows()
    reference, _ = load_table(write(rows, tmp_path / "pipes"))
    other = rows.assign(genres=[sep.join(g.split("|")) for g in rows["genres"]])
    path = write(other, tmp_path / "other")
    df, report = load_table(path)
    assert df["genres"].tolist() == reference["genres"].tolist() and not report.skipped
    assert any(len(g) > 1 for g in df["genres"])  # the multi-genre rows really were split
    result = validate_table(path, progress=False)
    assert exit_code(result) == 0
    assert table_stats(df)["label_counts"] == table_stats(reference)["label_counts"]


def test_split_genres_conventions() -> None:
    assert split_genres("Action, Adventure, Sci-Fi") == ["Action", "Adventure", "Sci-Fi"]
    assert split_genres("Action|Adventure; science fiction / Drama") == ["Action", "Adventure", "Sci-Fi", "Drama"]
    assert split_genres('[{"id": 28, "name": "Action"}, {"id": 878, "name": "Science Fiction"}]') == [
        "Action", "Sci-Fi"]
    assert split_genres("['Drama', 'Romance']") == ["Drama", "Romance"]
    assert split_genres("") == [] and split_genres(None) == []
    assert split_genres(["Film-Noir", "tv movie"]) == ["Film-Noir", "TV Movie"]


@pytest.fixture(scope="module")
def naive_model(tmp_path_factory) -> Path:
    """A ``naive`` model (most frequent labels; seconds to train) on 200 real movies."""
    folder = tmp_path_factory.mktemp("naive")
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    data = write(df[df["plot"] != ""].sample(200, random_state=3), folder / "data", posters=False)
    train_tiny("naive", data, folder / "model", folder / "cache")
    return folder / "model"


def test_evaluate_comma_genres_uses_every_row_and_says_so(tmp_path: Path, naive_model: Path) -> None:
    from genrelens.data.table import rows_line
    from genrelens.evaluate.run import evaluate_table

    rows = real_rows(100)
    comma = write(rows.assign(genres=[", ".join(g.split("|")) for g in rows["genres"]]), tmp_path / "comma")
    pipes = write(rows, tmp_path / "pipes")
    got, want = evaluate_table(naive_model, comma), evaluate_table(naive_model, pipes)
    assert got["rows"]["used"] == want["rows"]["used"] > 90
    assert got["weighted_f1"] == want["weighted_f1"]
    line = rows_line(got["rows"])
    assert line.startswith("rows: 100 read, ") and f"{got['rows']['used']} used" in line
    assert f"{100 - got['rows']['used']} dropped" in line


def test_evaluate_names_rows_dropped_and_why(tmp_path: Path, naive_model: Path) -> None:
    """Genres the loader cannot split (a convention it does not know) are dropped, never silently."""
    from genrelens.data.table import rows_line
    from genrelens.evaluate.run import evaluate_table

    rows = real_rows(60)
    odd = rows.assign(genres=[" + ".join(g.split("|")) for g in rows["genres"]])
    odd.loc[:4, "genres"] = ""  # 5 rows without genres: bad rows, skipped
    out = evaluate_table(naive_model, write(odd, tmp_path / "odd"))
    rows_info = out["rows"]
    assert rows_info["dropped"]["bad rows"] == 5 and rows_info["bad_row_problems"] == {"no genres": 5}
    unlabelled = rows_info["dropped"]["none of the model's labels"]
    assert rows_info["used"] + unlabelled + 5 == 60 and unlabelled > 0
    line = rows_line(rows_info)
    assert "5 bad rows: 5 no genres" in line and "none of the model's labels" in line
    assert " + " in line  # the genres that were not split are shown: the convention problem is visible


# --------------------------------------------------------------------------------- item 3: columns by other names


def test_columns_under_other_names(tmp_path: Path) -> None:
    rows = real_rows(40)
    reference, _ = load_table(write(rows, tmp_path / "ref"))
    other = rows.rename(columns={"id": "ID", "title": "Title", "plot": "overview", "poster": "poster_path",
                                 "genres": "Genre"})
    df, report = load_table(write(other, tmp_path / "other"))
    for c in ("id", "title", "plot", "genres"):
        assert df[c].tolist() == reference[c].tolist(), c
    assert [Path(p).name for p in df["poster"]] == [Path(p).name for p in reference["poster"]]
    assert report.columns["plot"] == "overview" and report.columns["id"] == "ID"
    assert "column 'overview' read as 'plot'" in report.notices
    assert "plot <- overview" in report.columns_line() and "title <- Title" in report.columns_line()
    result = validate_table(tmp_path / "other" / "movies.csv", progress=False)
    assert exit_code(result) == 0 and result.columns["poster"] == "poster_path"
    assert any("plot <- overview" in line for line in result_lines(result))


def test_tmdb_export_as_it_comes(tmp_path: Path) -> None:
    """TMDB's own movies table: numeric ids, ``overview``, ``original_language``, ``poster_path`` and genres as a
    JSON list of ``{"id", "name"}`` objects with TMDB's names ("Science Fiction")."""
    import json

    rows = real_rows(30)
    tmdb = pd.DataFrame({
        "id": [m.removeprefix("tmdb-") for m in rows["id"]], "title": rows["title"],
        "original_title": rows["title"], "original_language": rows["language"], "overview": rows["plot"],
        "genres": [json.dumps([{"id": 0, "name": "Science Fiction" if g == "Sci-Fi" else g} for g in gs.split("|")])
                   for gs in rows["genres"]],
        "poster_path": rows["poster"]})
    df, report = load_table(write(tmdb, tmp_path / "tmdb"))
    reference, _ = load_table(write(rows, tmp_path / "ref"))
    assert df["genres"].tolist() == reference["genres"].tolist()
    assert df["plot"].tolist() == reference["plot"].tolist() and df["language"].tolist() == rows["language"].tolist()
    assert report.columns == {"id": "id", "title": "title", "language": "original_language", "plot": "overview",
                              "genres": "genres", "poster": "poster_path"}
    assert any("not read: 'original_title'" in n for n in report.notices)


def test_two_plot_columns_are_an_error_naming_them(tmp_path: Path) -> None:
    rows = real_rows(10).rename(columns={"plot": "overview"})
    rows["description"] = rows["overview"].str[:40]
    path = write(rows, tmp_path / "two")
    with pytest.raises(DataError, match="'overview' and 'description'.*plot") as e:
        load_table(path)
    assert "plot=overview" in str(e.value)
    df, report = load_table(path, columns={"plot": "description"})
    assert df["plot"].tolist() == [" ".join(p[:40].split()) for p in rows["overview"]]
    assert report.columns["plot"] == "description"
    result = validate_table(path, progress=False)
    assert result.fatal and "could both be" in result.fatal
    assert exit_code(validate_table(path, progress=False, columns=["plot=overview"])) == 0


def test_exact_column_wins_and_the_other_is_named(tmp_path: Path) -> None:
    rows = real_rows(10)
    rows["synopsis"] = "a short synopsis"
    df, report = load_table(write(rows, tmp_path / "both"))
    assert df["plot"].tolist() == rows["plot"].str.split().str.join(" ").tolist()
    assert any("not read: 'synopsis'" in n for n in report.notices)


def test_mapping_to_a_missing_column_is_refused(tmp_path: Path) -> None:
    path = write(real_rows(5), tmp_path / "t")
    with pytest.raises(DataError, match="no column 'resume'"):
        load_table(path, columns={"plot": "resume"})
    with pytest.raises(DataError, match="unknown field 'story'"):
        load_table(path, columns=["story=plot"])


# ------------------------------------------------------------------------ item 6: separators and spreadsheets


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_separators_are_detected(tmp_path: Path, sep: str) -> None:
    rows = real_rows(50)
    reference, _ = load_table(write(rows, tmp_path / "ref"))
    path = write(rows, tmp_path / "other", sep=sep)
    df, report = load_table(path)
    assert df.drop(columns="poster").equals(reference.drop(columns="poster")) and report.sep == sep
    result = validate_table(path, progress=False)
    assert exit_code(result) == 0 and result.sep == sep
    chunks = list(iter_table_chunks(path, 20))  # what batch prediction reads
    assert [len(c) for c, _ in chunks] == [20, 20, 10] and list(chunks[0][0].columns) == list(rows.columns)


def test_wrong_separator_is_named(tmp_path: Path) -> None:
    path = write(real_rows(5), tmp_path / "semi", sep=";")
    with pytest.raises(DataError, match="separated by ';'"):
        load_table(path, sep=",")
    df, _ = load_table(path, sep="semicolon")
    assert len(df) == 5


def test_xlsx_input(tmp_path: Path) -> None:
    rows = real_rows(30)
    rows.loc[0, "year"] = ""  # an empty cell
    reference, _ = load_table(write(rows, tmp_path / "ref"))
    path = write(rows, tmp_path / "sheet", name="movies.xlsx")
    df, _ = load_table(path)
    assert df.drop(columns="poster").equals(reference.drop(columns="poster"))
    assert all(Path(p).is_file() for p in df["poster"])
    assert exit_code(validate_table(path, progress=False)) == 0


# ----------------------------------------------------------------------------------------- item 7: poster URLs


def test_poster_urls_are_named_not_mangled(tmp_path: Path) -> None:
    rows = real_rows(6)
    rows["poster"] = ["https://image.tmdb.org/t/p/w185/" + Path(p).name for p in rows["poster"]]
    path = write(rows, tmp_path / "urls", posters=False)
    df, _ = load_table(path)
    assert df["poster"].tolist() == rows["poster"].tolist()  # kept as given, not joined to the folder
    result = validate_table(path, progress=False)
    kinds = {p.kind for p in result.problems}
    assert kinds == {"poster is a URL (not fetched)"}
    message = result.problems[0].message
    assert "does not fetch" in message and "--posters" in message and str(tmp_path) not in message
    assert "https://image.tmdb.org" in message
    quick = validate_table(path, progress=False, check_posters=False)
    assert {p.kind for p in quick.problems} == kinds
    from genrelens.data.images import open_poster

    with pytest.raises(PosterError, match="URL .*does not fetch"):
        open_poster(df["poster"][0], root=tmp_path / "urls")


# ------------------------------------------------------------------------------------------ item 4: label typos


def test_label_typo_is_refused_with_the_labels_present(tmp_path: Path) -> None:
    from genrelens.train.run import prepare

    data = write(real_rows(120), tmp_path / "data", posters=False)
    toml = tmp_path / "run.toml"
    toml.write_text(f'model = "naive"\ndata = "{data}"\nlabels = "Drama,Comdey"\n')
    cfg = RunConfig(**{**read_config_file(toml), "out": str(tmp_path / "out")})
    with pytest.raises(DataError, match="Comdey") as e:
        prepare(cfg, tmp_path / "out")
    msg = str(e.value)
    assert "did you mean 'Comedy'" in msg and "Drama " in msg
    n_drama = sum("Drama" in g.split("|") for g in real_rows(120)["genres"])
    assert f"Drama {n_drama}" in msg
    ok = RunConfig(model="naive", data=str(data), out=str(tmp_path / "ok"), labels=["Drama", "Comedy"])
    (tmp_path / "ok").mkdir()
    assert prepare(ok, tmp_path / "ok").labels.labels == ["Drama", "Comedy"]


@pytest.mark.parametrize("labels, match", [
    ([], "empty"), ("", "empty"), ("Drama,,Comedy", "empty label"), (["Drama", "drama"], "repeats"),
    ("Sci-Fi,science fiction", "repeats"), ("top0", "K >= 1"),
])
def test_label_lists_checked_on_their_own(labels, match) -> None:
    with pytest.raises(ValueError, match=match):
        RunConfig(model="naive", labels=labels)


def test_label_typo_in_a_saved_config_json(tmp_path: Path) -> None:
    RunConfig(model="naive", labels=["Drama", "Comedy"]).save(tmp_path / "config.json")
    text = (tmp_path / "config.json").read_text().replace('"Comedy"', '"Drama "')
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match="repeats"):
        RunConfig.load(tmp_path / "config.json")


# ------------------------------------------------------------------- item 8: unlabelled, title-only, empty ids


def test_unlabelled_catalogue_validates_for_prediction(tmp_path: Path) -> None:
    path = write(real_rows(30).drop(columns=["genres"]), tmp_path / "catalogue")
    result = validate_table(path, progress=False)
    assert exit_code(result) == 0 and result.purpose == "prediction" and not result.problems
    from io import StringIO

    from rich.console import Console

    out = StringIO()
    render_validation(result, Console(file=out, width=200))
    assert "to predict on" in out.getvalue() and "(for prediction)" in out.getvalue()
    df, _ = load_table(path, need_genres=False)
    assert len(df) == 30


def test_title_only_table_for_prediction(tmp_path: Path) -> None:
    path = write(real_rows(20)[["id", "title"]], tmp_path / "titles")
    result = validate_table(path, progress=False)
    assert exit_code(result) == 0 and result.purpose == "prediction"
    df, report = load_table(path, need_genres=False)
    assert df["title"].tolist() == real_rows(20)["title"].tolist() and not report.skipped
    with pytest.raises(DataError, match="missing column"):
        load_table(path)  # training needs genres
    raw = pd.read_csv(path, dtype=str, keep_default_na=False).assign(genres="")  # as batch prediction reads it
    assert clean_table(raw, tmp_path)["title"].tolist() == df["title"].tolist()


def test_empty_id_is_flagged(tmp_path: Path) -> None:
    rows = real_rows(10).drop(columns=["genres"])
    rows.loc[3, "id"] = ""
    rows.loc[6, "id"] = rows.loc[1, "id"]
    result = validate_table(write(rows, tmp_path / "ids"), progress=False)
    assert [(p.row, p.kind) for p in result.errors] == [(4, "empty id"), (7, "duplicate id")]
    seen: dict[str, int] = {}
    first = id_problems(rows["id"][:5], 1, seen)
    assert first == {4: "empty id"}
    assert id_problems(rows["id"][5:], 6, seen) == {7: "duplicate id (first in row 2)"}


# ------------------------------------------------------- the command line: --sep, --column-map, rows used/dropped


def _cli(*args: str):
    from typer.testing import CliRunner

    from genrelens.cli import app

    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [*args])


def test_cli_evaluate_says_rows_used_and_dropped_without_json(tmp_path: Path, naive_model: Path) -> None:
    """Issue 26 item 2: the text output named no dropped rows (only --json had them)."""
    rows = real_rows(60)
    odd = rows.assign(genres=[" + ".join(g.split("|")) for g in rows["genres"]])  # a convention not split
    r = _cli("evaluate", "--model-dir", str(naive_model), "--data", str(write(odd, tmp_path / "odd", posters=False)))
    assert r.exit_code == 0, r.output
    used = int(r.output.split(" read, ")[1].split(" used")[0])
    assert "rows: 60 read, " in r.output and f"{60 - used} dropped (" in r.output and used < 60
    assert "none of the model's labels (their commonest genres: " in r.output and " + " in r.output
    comma = rows.assign(genres=[", ".join(g.split("|")) for g in rows["genres"]])
    r = _cli("evaluate", "--model-dir", str(naive_model), "--data",
             str(write(comma, tmp_path / "comma", posters=False)))
    assert r.exit_code == 0 and "rows: 60 read, " in r.output, r.output
    assert int(r.output.split(" read, ")[1].split(" used")[0]) > used  # comma genres are split: more rows used


def _renamed_semicolon(rows: pd.DataFrame, folder: Path) -> Path:
    """A catalogue team's export: other headers, two plot-like columns, ';'-separated."""
    other = rows.rename(columns={"id": "ID", "title": "Title", "plot": "overview", "poster": "Poster"})
    other["description"] = "short blurb"
    return write(other, folder, sep=";")


def test_cli_sep_and_column_map_on_validate_stats_and_evaluate(tmp_path: Path, naive_model: Path) -> None:
    rows = real_rows(40)
    path = _renamed_semicolon(rows, tmp_path / "semi")
    r = _cli("data", "validate", "--data", str(path), "--no-posters")
    assert r.exit_code == 2 and "could both be the 'plot' column" in r.output, r.output  # never a silent pick
    r = _cli("data", "validate", "--data", str(path), "--no-posters", "--column-map", "plot=overview")
    assert r.exit_code == 0 and "separator: ';'" in r.output and "plot <- overview" in r.output, r.output
    r = _cli("data", "validate", "--data", str(path), "--no-posters", "--sep", ",", "--column-map", "plot=overview")
    assert r.exit_code != 0 and "';'" in r.output, r.output  # the wrong separator is named
    r = _cli("data", "validate", "--data", str(path), "--no-posters", "--sep", "semicolon",
             "--column-map", "plot=description,title=Title")
    assert r.exit_code == 0 and "plot <- description" in r.output, r.output
    r = _cli("data", "validate", "--data", str(path), "--column-map", "story=overview")
    assert r.exit_code == 2 and "unknown field 'story'" in r.output, r.output

    r = _cli("data", "stats", "--data", str(path), "--out", str(tmp_path / "stats"), "--sep", ";",
             "--column-map", "plot=overview")
    assert r.exit_code == 0, r.output
    assert ("columns read: id <- ID, title <- Title, year, language, plot <- overview, genres, poster <- Poster"
            in r.output) and "40 rows" in r.output

    reference = write(rows, tmp_path / "ref", posters=False)
    want = _cli("evaluate", "--model-dir", str(naive_model), "--data", str(reference), "--json")
    got = _cli("evaluate", "--model-dir", str(naive_model), "--data", str(path), "--json", "--sep", "tab")
    assert got.exit_code == 2 and "';'" in got.output, got.output
    got = _cli("evaluate", "--model-dir", str(naive_model), "--data", str(path), "--json", "--column-map",
               "plot=overview")
    assert got.exit_code == 0, got.output
    import json

    def metrics(r):
        return json.loads(r.stdout[r.stdout.index("{"):])

    assert metrics(got)["rows"]["used"] == metrics(want)["rows"]["used"]
    assert metrics(got)["weighted_f1"] == metrics(want)["weighted_f1"]
    r = _cli("evaluate", "--model-dir", str(naive_model), "--data", str(path), "--column-map", "plot=overview")
    assert r.exit_code == 0 and "rows: 40 read, " in r.output, r.output


def test_cli_train_reads_sep_and_column_map(tmp_path: Path) -> None:
    rows = real_rows(120)
    path = _renamed_semicolon(rows, tmp_path / "semi")
    r = _cli("train", "--model", "naive", "--data", str(path), "--out", str(tmp_path / "run"), "--sep", "semicolon",
             "--column-map", "plot=overview", "--print-config")
    assert r.exit_code == 0, r.output
    assert 'sep = ";"' in r.stdout and 'plot = "overview"' in r.stdout
    r = _cli("train", "--model", "naive", "--data", str(path), "--out", str(tmp_path / "run"), "--column-map",
             "plot=overview", "--no-progress", "--no-precision-check")
    assert r.exit_code == 0, r.output
    from genrelens.config import RunConfig as Config

    saved = Config.load(tmp_path / "run" / "config.json")
    assert saved.columns == {"plot": "overview"}
    r = _cli("train", "--model", "naive", "--data", str(path), "--out", str(tmp_path / "run2"), "--no-progress")
    assert r.exit_code != 0 and "could both be the 'plot' column" in r.output, r.output


def test_a_trained_model_rereads_its_table_as_training_read_it(tmp_path: Path, monkeypatch) -> None:
    """A model trained from a relative path, with --sep, --column-map and --posters, re-reads its own table from
    any working folder, the same way (the accuracy guard, int8's calibration posters, the review reasons' refit,
    the page's examples): it used to re-read the path alone, relative to the folder it was run from."""
    from genrelens.guard import validation_movies
    from genrelens.predict import GenreClassifier
    from genrelens.serve.examples import load_examples
    from genrelens.trust import split_scores

    rows = real_rows(120)
    export = rows.rename(columns={"id": "ID", "title": "Title", "plot": "overview", "poster": "Poster"})
    export["description"] = "short blurb"  # a second plot-like column: the column map decides
    for rel in rows["poster"]:  # posters in a folder apart from the table
        (tmp_path / "work" / "art" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA.parent / rel, tmp_path / "work" / "art" / rel)
    export.to_csv(tmp_path / "work" / "export.csv", sep=";", index=False)
    monkeypatch.chdir(tmp_path / "work")
    r = _cli("train", "--model", "naive", "--data", "export.csv", "--out", "run", "--sep", "semicolon",
             "--column-map", "plot=overview", "--posters", "art", "--no-progress", "--no-precision-check")
    assert r.exit_code == 0, r.output
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    model = tmp_path / "work" / "run"
    cfg = RunConfig.load(model / "config.json")
    assert Path(cfg.data).is_absolute() and Path(cfg.posters).is_absolute()
    by_id = dict(zip(rows["id"], rows["plot"], strict=True))
    clf = GenreClassifier.load(model, precision="fp32")
    plots, posters, root, y, titles = validation_movies(model, cfg, clf.labels)
    assert plots and y.shape == (len(plots), len(clf.labels))
    ids = clf.bundle.split_ids("val")
    assert len(plots) >= len(ids) // 2 and set(plots) <= {by_id[i] for i in ids}
    assert all((root / p).exists() for p in posters)
    names, folder = clf.bundle.calibration_posters(5)
    assert len(names) == 5 and all((folder / p).exists() for p in names)
    scores = split_scores(clf, None)
    assert 0 < len(scores["test"][0]) <= len(clf.bundle.split_ids("test"))
    shutil.copy(tmp_path / "work" / "export.csv", tmp_path / "copy.csv")  # another table: its options are given
    with pytest.raises(DataError, match="--column-map plot=overview"):
        split_scores(clf, tmp_path / "copy.csv")
    again = split_scores(clf, tmp_path / "copy.csv", read={"sep": ";", "columns": {"plot": "overview"},
                                                           "posters": tmp_path / "work" / "art"})
    assert [len(v[0]) for v in again.values()] == [len(v[0]) for v in scores.values()]
    examples = load_examples(model, cfg.data, n=3, read=cfg.table_options())
    assert len(examples) == 3 and all(e.plot == by_id[e.id] for e in examples)


@pytest.fixture(scope="module")
def tfidf_model(tmp_path_factory) -> Path:
    """A ``tfidf`` model (reads plots; seconds to train) on 300 real movies."""
    folder = tmp_path_factory.mktemp("tfidf")
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    data = write(df[df["plot"] != ""].sample(300, random_state=4), folder / "data", posters=False)
    train_tiny("tfidf", data, folder / "model", folder / "cache", title=True)
    return folder / "model"



def test_evaluate_drops_rows_with_nothing_the_model_can_read(tmp_path: Path, tfidf_model: Path) -> None:
    """Labelled rows whose only input is a poster the model cannot use (a text model; a missing file) are dropped
    and named, not scored from the label frequencies into the F1 (they used to count as used)."""
    from genrelens.data.table import rows_line
    from genrelens.evaluate.run import evaluate_table

    rows = real_rows(40, seed=5)
    blind = rows.head(6).assign(id=[f"blind-{i}" for i in range(6)], plot="", title="", poster="posters/none.jpg")
    path = write(pd.concat([rows, blind], ignore_index=True), tmp_path / "t", posters=False)
    got, plain = evaluate_table(tfidf_model, path), evaluate_table(tfidf_model, write(rows, tmp_path / "p",
                                                                                      posters=False))
    assert got["rows"]["read"] == 46 and got["rows"]["used"] == plain["rows"]["used"]
    assert got["rows"]["dropped"]["with nothing this model reads"] == 6
    assert got["rows"]["used"] + got["rows"]["n_dropped"] == got["rows"]["read"]
    assert got["weighted_f1"] == plain["weighted_f1"] and got["n_rows"] == plain["n_rows"]
    assert "6 with nothing this model reads" in rows_line(got["rows"])
    only_blind = write(blind, tmp_path / "b", posters=False)
    with pytest.raises(DataError, match="has anything this model reads"):
        evaluate_table(tfidf_model, only_blind)

def test_cli_predict_input_reads_columns_by_other_names(tmp_path: Path, tfidf_model: Path) -> None:
    """Issue 26 item 3: a table with ``ID``, ``Title`` and ``overview`` was scored from nothing ("no input") with
    row numbers as ids, exit 0, no warning."""
    rows = real_rows(30).drop(columns=["genres"])
    reference = write(rows, tmp_path / "ref", posters=False)
    other = rows.rename(columns={"id": "ID", "title": "Title", "plot": "overview"})
    path = write(other, tmp_path / "other", posters=False, sep=";")
    base = ["predict", "--model-dir", str(tfidf_model), "--no-progress", "--columns", "none"]
    r = _cli(*base, "--input", str(reference), "--output", str(tmp_path / "want.csv"))
    assert r.exit_code == 0, r.output
    r = _cli(*base, "--input", str(path), "--output", str(tmp_path / "got.csv"))
    assert r.exit_code == 0, r.output
    assert "columns used: id <- ID, title <- Title, year, language, plot <- overview, poster" in r.output
    assert "column 'overview' read as 'plot'" in r.output
    want = pd.read_csv(tmp_path / "want.csv", dtype=str, keep_default_na=False)
    got = pd.read_csv(tmp_path / "got.csv", dtype=str, keep_default_na=False)
    assert got["id"].tolist() == rows["id"].tolist()  # the ids, not row numbers
    assert (got["error"] == "").all() and (got["genres"] != "").all()
    assert got.equals(want)

    # an explicit mapping wins; the id, plot and poster source columns are not copied to the output by default
    other["notes"] = "x"
    path = write(other, tmp_path / "mapped", posters=False)
    r = _cli("predict", "--model-dir", str(tfidf_model), "--no-progress", "--input", str(path), "--output",
             str(tmp_path / "mapped.csv"), "--column-map", "plot=notes")
    assert r.exit_code == 0 and "plot <- notes" in r.output, r.output
    mapped = pd.read_csv(tmp_path / "mapped.csv", dtype=str, keep_default_na=False)
    assert "notes" not in mapped.columns and "ID" not in mapped.columns and "overview" in mapped.columns
    assert "Title" in mapped.columns and mapped["id"].tolist() == rows["id"].tolist()
    r = _cli("predict", "--model-dir", str(tfidf_model), "--input", str(path), "--column-map", "plot=nope")
    assert r.exit_code == 2 and "no column 'nope'" in r.output, r.output


def test_cli_predict_title_only_table(tmp_path: Path, tfidf_model: Path) -> None:
    """A title-only catalogue is scored by a model that reads titles (tests/test_bad_inputs.py: one that does not
    refuses it, instead of reporting every row "not scored")."""
    path = write(real_rows(12)[["id", "title"]], tmp_path / "titles", posters=False)
    r = _cli("predict", "--model-dir", str(tfidf_model), "--no-progress", "--input", str(path), "--output",
             str(tmp_path / "p.csv"))
    assert r.exit_code == 0 and "columns used: id, title" in r.output, r.output
    out = pd.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)
    assert (out["genres"] != "").all() and (out["error"] == "").all()


# ------------------------------------------------------------------- quotes: a stray one never swallows rows


def _stray_quote(rows: pd.DataFrame, folder: Path, sep: str) -> Path:
    """``rows`` (without quotes or separators in their cells) written with ``sep``, row 2's plot opening a quote
    that never closes (the file is written by hand: pandas would escape the quote)."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = list(rows.columns)
    lines = [sep.join(cols)]
    for i, row in enumerate(rows.itertuples(index=False), 1):
        cells = [str(v) for v in row]
        if i == 2:
            cells[cols.index("plot")] = '"' + cells[cols.index("plot")]
        lines.append(sep.join(cells))
    path = folder / "movies.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_stray_quote_is_named_by_every_command_and_swallows_no_rows(tmp_path: Path, naive_model: Path,
                                                                     tfidf_model: Path) -> None:
    rows = real_rows(8)[["id", "title", "plot", "genres"]].map(lambda v: v.replace(",", "").replace(";", "")
                                                                .replace('"', ""))
    labelled = _stray_quote(rows, tmp_path / "labelled", ",")
    result = validate_table(labelled, progress=False)
    assert result.n_rows == 8 and [(p.row, p.kind) for p in result.problems] == [(2, "unmatched quote")]
    assert "swallow the next 6 line(s)" in result.problems[0].message
    df, report = load_table(labelled, skip_bad=True)  # evaluate and train read through load_table
    assert report.n_read == 8 and [(r, i) for r, i, _ in report.skipped] == [(2, rows["id"][1])]
    expected = rows.drop(index=1)
    assert df["id"].tolist() == expected["id"].tolist() and df["plot"].tolist() == expected["plot"].tolist()
    with pytest.raises(DataError, match="unmatched quote"):
        load_table(labelled)

    from genrelens.data.table import rows_line
    from genrelens.evaluate.run import evaluate_table

    got = evaluate_table(naive_model, labelled)["rows"]
    assert got["read"] == 8 and got["used"] + got["n_dropped"] == 8 and got["dropped"]["bad rows"] == 1
    assert got["bad_row_problems"] == {"unmatched quote": 1} and "1 bad row: 1 unmatched quote" in rows_line(got)

    catalogue = _stray_quote(rows.drop(columns=["genres"]), tmp_path / "catalogue", ";")
    r = _cli("predict", "--model-dir", str(tfidf_model), "--no-progress", "--input", str(catalogue), "--output",
             str(tmp_path / "p.csv"))
    assert r.exit_code == 0, r.output
    out = pd.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)
    assert out["id"].tolist() == rows["id"].tolist()
    assert out["error"][1].startswith("row 2: not scored: unmatched quote") and "line 3 of the file" in out["error"][1]
    assert (out["error"].drop(index=1) == "").all() and (out["genres"].drop(index=1) != "").all()


@pytest.mark.parametrize("sep", [",", ";"])
def test_real_plots_with_line_breaks_still_read_whole(tmp_path: Path, sep: str) -> None:
    """A real export may quote a plot written in paragraphs: it is one field, not a stray quote."""
    rows = real_rows(30)
    words = rows["plot"].str.split()
    rows["plot"] = [" ".join(w[:5]) + f"{sep} then\n" + " ".join(w[5:12]) + "\n\n" + " ".join(w[12:])
                    for w in words]
    path = write(rows, tmp_path / "paragraphs", sep=sep)
    df, report = load_table(path)
    assert not report.skipped and df["id"].tolist() == rows["id"].tolist()
    assert df["plot"].tolist() == [" ".join(p.split()) for p in rows["plot"]]
    result = validate_table(path, progress=False)
    assert result.n_rows == 30 and result.problems == []
    assert sum(len(c) for c, _ in iter_table_chunks(path, chunk_size=7)) == 30


def test_a_text_model_answers_a_poster_it_never_reads_the_same_way_everywhere(tmp_path: Path,
                                                                              tfidf_model: Path) -> None:
    """For a model that reads no posters, a poster (readable or not) is ignored with the same warning, and never
    makes `input_ignored`; a title with only such a poster is still `title_only`."""
    from genrelens.predict import GenreClassifier
    from genrelens.types import Movie

    clf = GenreClassifier.load(tfidf_model, precision="fp32")
    poster = DATA.parent / real_rows(1)["poster"][0]
    plot = "Bank robbers and a detective clash in Los Angeles after a heist goes wrong."
    got = clf.predict_movies([Movie(plot=plot, poster=poster), Movie(plot=plot, poster=ValueError("not an image")),
                              Movie(title="Avatar", poster=poster)])
    assert [p.warnings for p in got[:2]] == [["poster ignored: this model reads plots only"]] * 2
    assert not any("input_ignored" in p.review_reasons for p in got)
    assert "title_only" in got[2].review_reasons


def test_evaluate_a_table_with_no_row_to_evaluate_says_why(tmp_path: Path, naive_model: Path) -> None:
    """Every row bad or without the model's labels: a DataError that says which rows went where (it was a raw
    'Found empty input array' from scikit-learn)."""
    from genrelens.evaluate.run import evaluate_table

    rows = real_rows(20).assign(genres="Western")
    with pytest.raises(DataError, match=r"no row of .* to evaluate: rows: 20 read, 0 used, 20 dropped \(20 with "
                                        r"none of the model's labels \(their commonest genres: Western\)\)"):
        evaluate_table(naive_model, write(rows, tmp_path / "w", posters=False))


def test_evaluate_split_without_data_reads_the_model_s_own_table(tmp_path: Path, monkeypatch) -> None:
    """`evaluate --split test` without --data scores the model's own table (read as training read it), not the
    rows of the default data that happen to share its ids (they used to be scored, with their text and genres)."""
    from genrelens.evaluate.run import evaluate_table

    rows = real_rows(200, seed=8)
    own = rows.assign(genres=[g.replace("Drama", "Tmp").replace("Comedy", "Drama").replace("Tmp", "Comedy")
                              for g in rows["genres"]])  # the catalogue's own labelling: the same ids
    export = own.rename(columns={"plot": "overview"}).assign(description="short blurb")
    export.to_csv(tmp_path / "own.csv", sep=";", index=False)
    train_tiny("tfidf", tmp_path / "own.csv", tmp_path / "m", tmp_path / "c", sep=";", columns={"plot": "overview"})
    monkeypatch.chdir(tmp_path)
    got = evaluate_table(tmp_path / "m", None, split="test")
    want = json.loads((tmp_path / "m" / "metrics.json").read_text())["test"]["weighted_f1"]
    assert got["rows"]["read"] == 200 and abs(got["weighted_f1"] - want) < 1e-6
