"""`genrelens adapt`: warm start, label sets, the holdout refusal and bad input, on the tiny trained models."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from genrelens.bundle import MANIFEST, ModelBundle
from genrelens.cli import app as cli_app
from genrelens.predict import GenreClassifier
from genrelens.train import adapt as A
from genrelens.types import Movie

runner = CliRunner()


def table_like(src: Path, folder: Path, rows: slice | None = None, genres=None) -> Path:
    """A copy of the subset table ``src`` (posters resolved against its folder), optionally cut or relabelled."""
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    if rows is not None:
        df = df.iloc[rows]
    if genres is not None:
        df["genres"] = [genres(g) for g in df["genres"]]
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "mine.csv"
    df.to_csv(out, index=False)
    return out


def invoke(*args: str):
    return runner.invoke(cli_app, ["adapt", *(str(a) for a in args)])


def raw_scores(folder: Path, table: pd.DataFrame) -> np.ndarray:
    """The uncalibrated scores of the model folder ``folder`` on ``table``, through ``GenreClassifier``."""
    plots = [p or None for p in table["plot"]]
    proba, _ = GenreClassifier.load(folder).score(plots, list(table["poster"]), calibrated=False,
                                                  titles=list(table["title"]))
    return proba


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_catalogue_dir"])
def test_zero_steps_keeps_the_starting_predictions(fixture, request, subset_csv, tmp_path):
    """Adapting with zero steps on the starting labels: the saved folder scores exactly as the starting model
    (head and lexical channel untouched; only thresholds and calibration are refitted)."""
    start_dir = request.getfixturevalue(fixture)
    start = ModelBundle.from_pretrained(start_dir)
    cfg = A.AdaptConfig(start=start_dir, data=subset_csv, out=tmp_path / "out", labels=list(start.labels), steps=0,
                        curve=None)
    p = A.plan(cfg)
    result = A.adapt(cfg, p)
    A.save(result, cfg.out)
    assert ModelBundle.from_pretrained(cfg.out).labels == start.labels
    some = p.table.head(100)  # through the whole prediction path: 100 movies show it (and cost a quarter)
    np.testing.assert_allclose(raw_scores(cfg.out, some), raw_scores(start_dir, some), atol=1e-6)
    manifest = json.loads((cfg.out / MANIFEST).read_text())
    assert manifest["lineage"]["started_from"] == str(Path(start_dir).resolve())
    assert manifest["lineage"]["rows"] == len(p.table)
    metrics = json.loads((cfg.out / "metrics.json").read_text())
    assert metrics["lineage"]["fit_rows"] + metrics["lineage"]["holdout_rows"] == len(p.table)
    assert GenreClassifier.load(cfg.out).predict(plots=["A killer stalks a small town."], posters=[None])


def test_new_dropped_and_renamed_labels(tiny_catalogue_dir, subset_csv, tmp_path):
    """A label map renames Thriller to Suspense, --drop leaves Mystery out, Family is new: the head's rows are
    carried over by name, the new one starts at zero weights and its log-odds prior, and the folder serves."""
    start = ModelBundle.from_pretrained(tiny_catalogue_dir)
    (tmp_path / "map.toml").write_text('"Thriller" = "Suspense"\n')
    keep = ["Drama", "Comedy", "Suspense", "Horror", "Family"]
    cfg = A.AdaptConfig(start=tiny_catalogue_dir, data=subset_csv, label_map=tmp_path / "map.toml", labels=keep,
                        drop=["Mystery"], steps=0, curve=None)
    p = A.plan(cfg)
    assert set(p.labels) == set(keep)
    assert p.new == ["Family"] and p.renamed == {"Thriller": "Suspense"}
    assert "Mystery" in p.dropped and "Thriller" not in p.dropped
    result = A.adapt(cfg, p)
    b = result.model
    keys = A.output_keys(start.config, start.dims, len(start.labels))
    weight, bias = (next(k for k in keys if k.endswith(end)) for end in ("weight", "bias"))  # the last layer's
    old, new = start.model.state_dict(), b.model.state_dict()
    js, jt, j = p.labels.index("Suspense"), start.labels.index("Thriller"), p.labels.index("Family")
    assert torch.equal(new[weight][js], old[weight][jt]) and torch.equal(new[bias][js], old[bias][jt])
    assert float(new[weight][j].abs().sum()) == 0.0
    assert b.lexical.coef[j].sum() == 0.0
    rest, _ = A.stratified_split(p.y, cfg.holdout, cfg.seed)
    fit, _ = A.stratified_split(p.y[rest], cfg.cal_share, cfg.seed)
    prior = A.prior_logits(p.y[rest][fit])[j]
    assert float(new[bias][j]) == pytest.approx(prior, abs=1e-5)
    A.save(result, tmp_path / "out")
    clf = GenreClassifier.load(tmp_path / "out")
    assert clf.labels == p.labels and clf.calibrator.labels == p.labels
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["lineage"]["label_map"] == {"Thriller": "Suspense"}
    from genrelens.evaluate.run import evaluate_table

    # evaluate reads the table's genres through the label map, as adapt did: Thriller movies are Suspense ones
    metrics = evaluate_table(tmp_path / "out", subset_csv)
    n_thriller = sum("Thriller" in g.split("|") for g in pd.read_csv(subset_csv, dtype=str, keep_default_na=False)[
        "genres"])
    assert metrics["per_label"]["Suspense"]["support"] == n_thriller > 0
    from fastapi.testclient import TestClient

    from genrelens.serve.app import create_app

    with TestClient(create_app(classifier=clf)) as client:  # every entry point serves it unchanged
        info = client.get("/v1/model").json()
        answer = client.post("/v1/predict", json={"plot": "A family of rabbits crosses a forest."}).json()
    assert info["labels"] == p.labels and info["lineage"]["label_map"] == {"Thriller": "Suspense"}
    assert set(answer["scores"]) == set(p.labels)


@pytest.mark.parametrize("table_spelling", ["Sci-Fi", "Science Fiction"])
def test_a_label_map_renames_onto_the_catalogue_s_own_spelling(table_spelling, tiny_catalogue_dir, subset_csv,
                                                               tmp_path):
    """``"Sci-Fi" = "Science Fiction"`` renames the label to the catalogue's spelling, even though genrelens reads
    "Science Fiction" in a table as Sci-Fi (it used to fold the rename back onto Sci-Fi without a word)."""
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    df["genres"] = df["genres"].str.replace("Sci-Fi", table_spelling)
    df.to_csv(tmp_path / "mine.csv", index=False)
    (tmp_path / "map.toml").write_text('"Sci-Fi" = "Science Fiction"\n')
    cfg = A.AdaptConfig(start=tiny_catalogue_dir, data=tmp_path / "mine.csv", label_map=tmp_path / "map.toml",
                        labels=["Drama", "Comedy", "science fiction"], posters=Path(subset_csv).parent, steps=0,
                        curve=None)
    p = A.plan(cfg)
    assert p.labels == ["Drama", "Comedy", "Science Fiction"]
    assert p.renamed == {"Sci-Fi": "Science Fiction"} and p.sources["Science Fiction"] == ["Sci-Fi"]
    assert p.y[:, 2].sum() == df["genres"].str.contains(table_spelling).sum()


def test_a_label_map_target_spelled_as_a_known_genre_gathers_that_genre_too(tiny_catalogue_dir, subset_csv,
                                                                             tmp_path):
    """``"Space Opera" = "Science Fiction"`` over a table that writes both: one label, "Science Fiction", with the
    rows of both spellings and of the start's Sci-Fi (the table's "Science Fiction" reads as Sci-Fi), not two."""
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    sci = df["genres"].str.contains("Sci-Fi")
    df.loc[sci, "genres"] = [g.replace("Sci-Fi", "Space Opera" if k % 2 else "Science Fiction")
                             for k, g in enumerate(df.loc[sci, "genres"])]
    df.to_csv(tmp_path / "mine.csv", index=False)
    (tmp_path / "map.toml").write_text('"Space Opera" = "Science Fiction"\n')
    p = A.plan(A.AdaptConfig(start=tiny_catalogue_dir, data=tmp_path / "mine.csv", label_map=tmp_path / "map.toml",
                             labels=["Drama", "Comedy", "Science Fiction"], posters=Path(subset_csv).parent,
                             steps=0, curve=None))
    assert p.labels == ["Drama", "Comedy", "Science Fiction"] and p.y[:, 2].sum() == sci.sum()
    assert p.sources["Science Fiction"] == ["Sci-Fi"] and p.renamed == {"Sci-Fi": "Science Fiction"}
    from genrelens.bundle import labelled_rows

    _, y, _ = labelled_rows(p.table.assign(genres=[[p.mapping.get(g, g) for g in gs] for gs in p.table["genres"]]),
                            None, p.labels)
    assert y.shape[1] == 3 and y[:, 2].sum() == sci.sum()


def _all_sent_back(start_dir, subset_csv, features, tmp_path, monkeypatch, label_map: dict):
    """``(start, plan, adapted bundle)``: the start adapted 3 steps through ``label_map`` on the subset's encoded
    movies, with every label too short of positives to judge (so the safeguard sends each back)."""
    start = ModelBundle.from_pretrained(start_dir)
    (tmp_path / "map.toml").write_text("".join(f'"{a}" = "{b}"\n' for a, b in label_map.items()))
    labels = [g for g in start.labels if g not in label_map] + sorted(set(label_map.values()) - set(start.labels))
    cfg = A.AdaptConfig(start=start_dir, data=subset_csv, label_map=tmp_path / "map.toml", labels=labels, steps=3,
                        curve=None)
    p = A.plan(cfg)
    assert len(p.y) == len(features)
    monkeypatch.setattr(A, "MIN_ADAPT_POSITIVES", 10**6)  # every label: too few positives to judge
    return start, p, A.fit_on(p.start, p, copy.deepcopy(features), p.y, cfg).model


def test_merging_into_a_label_the_start_has_keeps_that_label_s_own_output(tiny_catalogue_dir, subset_csv, tmp_path,
                                                                         catalogue_features, monkeypatch):
    """``"Action" = "Adventure"``: the start's own Adventure row is where the merged label starts and what it keeps
    (it used to keep Action's, the first in the start's order, and say the start had none); a rename keeps the
    renamed row and the report names it."""
    start, p, b = _all_sent_back(tiny_catalogue_dir, subset_csv, catalogue_features, tmp_path, monkeypatch,
                                 {"Action": "Adventure", "Sci-Fi": "Space"})
    assert p.sources["Adventure"] == ["Adventure", "Action"]
    keys = A.output_keys(start.config, start.dims, len(start.labels))
    bias = next(k for k in keys if k.endswith("bias"))
    assert float(b.model.state_dict()[bias][p.labels.index("Adventure")]) == float(
        start.model.state_dict()[bias][start.labels.index("Adventure")])
    from genrelens.cli.adapt import kept_line

    line = kept_line(b.lineage)
    assert "Adventure (its own starting output only: Action, merged into it, is not in it)" in line, line
    assert "Space (the start's Sci-Fi)" in line, line


def test_adapt_says_which_rows_it_used_and_dropped(tiny_catalogue_dir, subset_csv, tmp_path):
    """Rows with none of the adapted labels are dropped, and adapt says how many and why (it used to say
    "encoding 281 movies" of a 300-row table without a word), in its output and its metrics."""
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    labels = ["Drama", "Comedy", "Thriller"]
    unlabelled = sum(not set(labels) & set(g.split("|")) for g in df["genres"])
    cfg = A.AdaptConfig(start=tiny_catalogue_dir, data=subset_csv, labels=labels, steps=0, curve=None)
    p = A.plan(cfg)
    assert p.rows["read"] == len(df) and p.rows["used"] == len(df) - unlabelled == len(p.y)
    assert p.rows["dropped"] == {"none of the model's labels": unlabelled}
    r = invoke("--from", tiny_catalogue_dir, "--data", subset_csv, "--out", tmp_path / "out", "--labels",
               ",".join(labels), "--steps", "0", "--no-curve", "--force", "--no-progress")
    assert r.exit_code == 0, r.output
    words = " ".join(r.output.split())
    assert f"rows: {len(df)} read, {len(df) - unlabelled} used, {unlabelled} dropped ({unlabelled} with none of the " \
           "model's labels" in words, words
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["adapt"]["rows"]["used"] == len(p.y)


def test_adapting_learns_a_new_labelling(tiny_model_dir, subset_csv, tmp_path):
    """A table that names a genre its own way ("Kids", read as "Children") gets that label as a new output; on
    the held-out rows the starting model never predicts it, and `helped` is whether weighted F1 rose."""
    table = table_like(subset_csv, tmp_path, genres=lambda g: g.replace("Family", "Kids"))
    cfg = A.AdaptConfig(start=tiny_model_dir, data=table, labels=["Drama", "Comedy", "Children"], curve=None,
                        holdout=0.3)
    p = A.plan(cfg)
    assert p.new == ["Children"]  # "Kids" is read as MovieLens's "Children"
    result = A.adapt(cfg, p)
    h = result.report["holdout"]
    assert h["starting"]["per_label"]["Children"]["f1"] == 0.0  # the starting model never predicts a new label
    assert set(h["adapted"]["per_label"]) == {"Drama", "Comedy", "Children"}
    assert result.report["helped"] == (h["adapted"]["weighted_f1"] > h["starting"]["weighted_f1"])


def test_not_better_exits_non_zero_unless_forced(tiny_model_dir, subset_csv, tmp_path, monkeypatch):
    """An adapted model that scores worse on the held-out rows is refused (exit 1, nothing written), unless
    --force. (Its scores are replaced by all-negative ones: a model that is certainly worse.)"""
    def useless(b, fx):
        return np.zeros((len(fx), len(b.labels)), np.float32), np.zeros((len(fx), len(b.labels)), bool)

    monkeypatch.setattr(A, "model_scores", useless)
    out = tmp_path / "out"
    args = ("--from", tiny_model_dir, "--data", subset_csv, "--out", out, "--labels", "Drama,Comedy,Thriller",
            "--no-curve", "--steps", "5", "--no-progress")
    r = invoke(*args)
    assert r.exit_code == 1, r.output
    assert "not better" in r.output and not out.exists()
    r = invoke(*args, "--force")
    assert r.exit_code == 0, r.output
    assert (out / MANIFEST).exists()


@pytest.mark.parametrize("case", ["few_rows", "few_positives", "map_onto_nothing", "not_a_model", "out_not_empty"])
def test_bad_input_exits_2_before_training(case, tiny_model_dir, subset_csv, tmp_path):
    start, data, extra = tiny_model_dir, subset_csv, []
    if case == "few_rows":
        data, needle = table_like(subset_csv, tmp_path / "t", rows=slice(0, 40)), "at least 50"
    elif case == "few_positives":  # three telenovelas only
        seen = iter(range(10_000))
        data = table_like(subset_csv, tmp_path / "t", genres=lambda g: g + "|Telenovela" if next(seen) < 3 else g)
        extra, needle = ["--labels", "Drama,Comedy,Telenovela"], "'Telenovela' (3)"
    elif case == "map_onto_nothing":
        (tmp_path / "map.toml").write_text('"Telenovela" = "Drama"\n')
        extra, needle = ["--label-map", tmp_path / "map.toml"], "'Telenovela' maps onto nothing"
    elif case == "not_a_model":
        start, needle = Path(subset_csv).parent, "is not a model"
    else:
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "keep.txt").write_text("mine")
        needle = "not empty"
    r = invoke("--from", start, "--data", data, "--out", tmp_path / "out", *extra)
    assert r.exit_code == 2, r.output
    assert needle in " ".join(r.output.split()), r.output
    assert case == "out_not_empty" or not (tmp_path / "out").exists()
    if case == "few_positives":  # the offered fix works
        assert "--drop" in r.output
        assert A.plan(A.AdaptConfig(start=start, data=data, labels=["Drama", "Comedy", "Telenovela"],
                                    drop=["Telenovela"])).labels == ["Drama", "Comedy"]


@pytest.fixture(scope="module")
def catalogue_features(tiny_catalogue_dir, subset_csv) -> A.Features:
    """The subset's movies through the tiny catalogue model's encoders (the tests below refit its outputs on
    them; a copy each, as fitting may change them)."""
    start = ModelBundle.from_pretrained(tiny_catalogue_dir)
    p = A.plan(A.AdaptConfig(start=tiny_catalogue_dir, data=subset_csv, labels=list(start.labels)))
    return A.features_of(p.start, p.table)


@pytest.mark.parametrize("margin", [0.01, None])
def test_safeguard_keeps_the_starting_row_of_a_label_the_adaptation_made_worse(tiny_catalogue_dir, subset_csv,
                                                                               catalogue_features, monkeypatch,
                                                                               margin):
    """A label whose adapted output never fires (worse than the start on the calibration rows) goes back to its
    starting head row, lexical row and threshold, and the lineage says so; with the safeguard off it stays broken."""
    start = ModelBundle.from_pretrained(tiny_catalogue_dir)
    cfg = A.AdaptConfig(start=tiny_catalogue_dir, data=subset_csv, labels=list(start.labels), steps=3, curve=None,
                        keep_margin=margin)
    p = A.plan(cfg)
    j = p.labels.index("Drama")
    keys = A.output_keys(start.config, start.dims, len(start.labels))
    bias = next(k for k in keys if k.endswith("bias"))
    fit_head, fit_lexical = A.fit_head, A.fit_lexical

    def broken_head(*a):
        head = fit_head(*a)
        with torch.no_grad():
            head.state_dict()[bias][j] = -50.0
        return head

    def broken_lexical(*a):
        ch = fit_lexical(*a)
        if a[-1].steps > 0:
            ch.intercept[j] = -50.0
        return ch

    monkeypatch.setattr(A, "fit_head", broken_head)
    monkeypatch.setattr(A, "fit_lexical", broken_lexical)
    fx = copy.deepcopy(catalogue_features)
    b = A.fit_on(p.start, p, fx, p.y, cfg).model
    s = start.labels.index("Drama")
    if margin is None:
        assert float(b.model.state_dict()[bias][j]) == -50.0 and b.lexical.intercept[j] == -50.0
        return
    assert "Drama" in b.lineage["kept_starting_output"]
    assert torch.equal(b.model.state_dict()[bias][j], start.model.state_dict()[bias][s])
    assert b.lexical.intercept[j] == start.lexical.intercept[s]
    np.testing.assert_array_equal(b.lexical.coef[j], start.lexical.coef[s])
    assert b.thresholds[j] == start.thresholds[s]
    # the head's shared layers are not refitted (only output rows), so the kept label scores, calibrates and
    # decides as the start
    shared = [k for k in start.model.state_dict() if k not in keys]
    assert shared and all(torch.equal(b.model.state_dict()[k], start.model.state_dict()[k]) for k in shared)
    start_p = start.head_proba(fx.feats)[:, s]
    np.testing.assert_allclose(b.head_proba(A.with_lexical(fx, b.lexical))[:, j], start_p, atol=1e-6)
    assert b.calibrator.thresholds[j] == start.calibrator.thresholds[s]


def test_a_merged_label_kept_at_the_start_says_which_source_it_keeps(tiny_catalogue_dir, subset_csv,
                                                                      catalogue_features, tmp_path, monkeypatch):
    """Thriller and Crime merged into one label: the start has no single output for it, so when the safeguard sends
    it back (too few positives to judge), it keeps its first source's output (Thriller's, which misses the Crime
    movies), and the lineage and the report say so instead of "kept at the start" alone (benchmarks/adapt.py: at
    100 rows this loses less than adapting the merged row)."""
    start, p, b = _all_sent_back(tiny_catalogue_dir, subset_csv, catalogue_features, tmp_path, monkeypatch,
                                 {"Thriller": "Suspense & Crime", "Crime": "Suspense & Crime"})
    assert p.sources["Suspense & Crime"] == ["Thriller", "Crime"]
    assert set(b.lineage["kept_starting_output"]) == set(p.labels)
    assert b.lineage["kept_as"] == {"Suspense & Crime": ["Thriller", "Crime"]}
    from genrelens.cli.adapt import kept_line

    line = kept_line({"kept_starting_output": b.lineage["kept_starting_output"], "kept_as": b.lineage["kept_as"]})
    assert "Suspense & Crime (Thriller's output only" in line and "Drama" in line


def test_adapted_model_keeps_the_review_reasons_reference(tiny_catalogue_dir, subset_csv, tmp_path):
    """An adapted folder flags the same inputs out_of_distribution as its starting model: the novelty reference
    (poster features and the text encoder's frozen probe, which adapting does not change) is carried over."""
    start = ModelBundle.from_pretrained(tiny_catalogue_dir)
    assert start.novelty is not None
    cfg = A.AdaptConfig(start=tiny_catalogue_dir, data=subset_csv, out=tmp_path / "out", labels=list(start.labels),
                        steps=3, curve=None)
    A.save(A.adapt(cfg), cfg.out)
    assert ModelBundle.from_pretrained(cfg.out).novelty is not None
    table = pd.read_csv(subset_csv, dtype=str, keep_default_na=False).head(12)
    movies = [Movie(title=t, plot=p) for t, p in zip(table["title"], table["plot"])]
    movies.append(Movie(plot="Preheat the oven to 180 degrees. Whisk the eggs with the sugar, fold in the flour and "
                             "bake the sponge for twenty-five minutes until golden; cool on a rack."))
    flags = {d: ["out_of_distribution" in p.review_reasons for p in GenreClassifier.load(d).predict_movies(movies)]
             for d in (tiny_catalogue_dir, cfg.out)}
    assert flags[cfg.out] == flags[tiny_catalogue_dir]


@pytest.mark.parametrize("n", [1, 2])
def test_ft_layers_fine_tunes_the_top_text_layers(n, tiny_catalogue_dir, subset_csv, tmp_path):
    """--ft-layers N trains the top N text layers on the user's rows (the layers below, and so the probe the review
    reasons read, stay as they were), even N = 2 over a start that fine-tuned its top layer only (its probe is
    layer 4); the folder carries the new encoder and a text head for the user's labels, and its scores come from
    the new encoder."""
    start = ModelBundle.from_pretrained(tiny_catalogue_dir, backend="torch")
    assert start.config.ft_layers == 1 and start.text_encoder.probe_layer == 4
    labels = ["Drama", "Comedy", "Thriller", "Horror"]
    out = tmp_path / "out"
    r = invoke("--from", tiny_catalogue_dir, "--data", subset_csv, "--out", out, "--labels", ",".join(labels),
               "--ft-layers", str(n), "--no-curve", "--steps", "20", "--force", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "fine-tun" in r.output
    assert f"lineage:startedfrom{Path(tiny_catalogue_dir).resolve()}" in "".join(r.output.split())  # rich wraps
    adapted = ModelBundle.from_pretrained(out, backend="torch")
    old, new = start.text_encoder.model.state_dict(), adapted.text_encoder.model.state_dict()
    n_layers = len(start.text_encoder.model.encoder.layer)
    top = tuple(f"encoder.layer.{i}." for i in range(n_layers - n, n_layers))
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and all(k.startswith(top) for k in changed), sorted(changed)[:5]
    assert {k.split(".")[2] for k in changed} == {str(i) for i in range(n_layers - n, n_layers)}  # each of them
    assert adapted.text_head is not None and adapted.text_head.state_dict()["missing_logits"].shape[0] == len(labels)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["adapt"]["seconds"]["fine_tune"] > 0 and metrics["lineage"]["settings"]["ft_layers"] == n
    assert adapted.text_encoder.probe_layer == 4  # the review reasons still read the start's pretrained layer 4
    # a label kept at the start keeps its output row, but over the new encoder's features: its scores are new, so
    # its calibration is fitted on the calibration rows, not copied from the start (and the report says so)
    kept = metrics["lineage"]["kept_starting_output"]
    assert kept and not metrics["lineage"]["kept_exactly"], metrics["lineage"]
    assert "kept their starting output rows (over the refitted features" in " ".join(r.output.split())
    assert all(adapted.calibrator.info["labels"][g].get("from") != "the starting model" for g in kept)
    table = pd.read_csv(subset_csv, dtype=str, keep_default_na=False).head(8)
    assert not np.allclose(raw_scores(out, table)[:, 0], raw_scores(tiny_catalogue_dir, table)[:, 0])


@pytest.mark.parametrize("case", ["reaching_the_probe", "no_text_stage"])
def test_ft_layers_refused_where_it_cannot_apply(case, tiny_catalogue_dir, tiny_naive_dir, subset_csv, tmp_path):
    start, n, needle = tiny_catalogue_dir, "3", "at most 2"  # the review reasons' probe reads MiniLM's layer 4
    if case == "no_text_stage":
        start, n, needle = tiny_naive_dir, "1", "fine-tuned text encoder"
    r = invoke("--from", start, "--data", subset_csv, "--out", tmp_path / "out", "--ft-layers", n)
    assert r.exit_code == 2, r.output
    assert needle in " ".join(r.output.split()), r.output
    assert not (tmp_path / "out").exists()


def test_adapt_reads_a_table_from_a_spreadsheet(tiny_model_dir, subset_csv, tmp_path):
    """Columns under other names, comma-separated genres, a semicolon-separated file: --column-map and --sep (as
    the other table commands take them) let adapt read it."""
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    messy = pd.DataFrame({"Ref": df["id"], "Name": df["title"], "Synopsis": df["plot"],
                          "Genre": df["genres"].str.replace("|", ", "), "Poster": df["poster"]})
    table = tmp_path / "mine.csv"
    messy.to_csv(table, sep=";", index=False)
    out = tmp_path / "out"
    r = invoke("--from", tiny_model_dir, "--data", table, "--out", out, "--sep", ";", "--column-map", "id=Ref",
               "--column-map", "plot=Synopsis", "--column-map", "title=Name", "--column-map", "genres=Genre",
               "--posters", Path(subset_csv).parent, "--labels", "Drama,Comedy,Thriller", "--no-curve", "--steps",
               "0", "--force", "--no-progress")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "metrics.json").read_text())["lineage"]["rows"] == len(df[df["genres"].str.contains(
        "Drama|Comedy|Thriller")])
    # the adapted model re-reads its table as adapt read it (serve's examples, the review reasons' refit)
    from genrelens.config import RunConfig
    from genrelens.data.table import load_table

    cfg = RunConfig.load(out / "config.json")
    assert cfg.sep == ";" and cfg.columns["plot"] == "Synopsis"
    again, _ = load_table(cfg.data, skip_bad=True, **cfg.table_options())
    assert list(again["plot"]) == list(df["plot"]) and again["poster"].notna().sum() == (df["poster"] != "").sum()


def test_calibrate_refuses_an_adapted_model_with_a_clear_message(tiny_catalogue_dir, subset_csv, tmp_path):
    """An adapted model has no validation split: calibrate says so (it failed with numpy's 'zero-size array')."""
    from genrelens.errors import ModelError
    from genrelens.trust import calibrate_model_dir

    r = invoke("--from", tiny_catalogue_dir, "--data", subset_csv, "--out", tmp_path / "out", "--labels",
               "Drama,Comedy,Thriller", "--steps", "0", "--no-curve", "--force", "--no-progress")
    assert r.exit_code == 0, r.output
    with pytest.raises(ModelError, match="no validation split to calibrate on"):
        calibrate_model_dir(tmp_path / "out")
