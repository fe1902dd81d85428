"""The benchmark report: every section, embedded figures, the study's numbers, and graceful gaps."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_benchmark import tiny_grid

from genrelens.experiments.report import SECTIONS, build_report, decade_buckets, results_table_markdown

STUDY_NUMBERS = ("0.209", "0.232", "0.210", "0.433", "0.431", "0.429", "0.453")


@pytest.fixture(scope="session")
def report(tmp_path_factory, subset_csv, cache_dir) -> tuple[Path, Path, Path]:
    out, _ = tiny_grid(tmp_path_factory, subset_csv, cache_dir)
    md, html = build_report(out)
    return out, md, html


def test_html_has_every_section_and_is_self_contained(report):
    _, _, html_path = report
    html = html_path.read_text()
    for title in SECTIONS.values():
        assert f"<h2>{title}</h2>" in html, title
    assert "Skipped" not in html  # the tiny grid has every input
    figures = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)
    assert len(figures) >= 3  # decades, curves, co-occurrence (posters are JPEG)
    assert html.count('src="data:image/jpeg;base64,') >= 1
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing external
    assert "<link" not in html and "<script" not in html


def test_markdown_has_table2_with_the_study_numbers(report):
    out, md_path, _ = report
    md = md_path.read_text()
    table2 = md.split("## Table 2")[1].split("\n## ")[0]
    for n in STUDY_NUMBERS:
        assert n in table2
    for model in ("naive", "poster", "text-finetuned", "integrated"):
        assert f"| {model} |" in table2
    for ref in re.findall(r"\]\((report_files/[^)]+)\)", md):
        assert (out / ref).exists()


def test_results_table_markdown(report):
    out, _, _ = report
    text = results_table_markdown(json.loads((out / "results.json").read_text()))
    assert "| model | weighted F1 (no oversampling) | study (no oversampling) |" in text
    assert all(n in text for n in STUDY_NUMBERS) and "micro F1" in text


def test_missing_inputs_become_notes(report, tmp_path):
    out, _, _ = report
    results = json.loads((out / "results.json").read_text())
    results["runs"] = [r for r in results["runs"] if r["model"] == "naive"]
    results["summary"] = [s for s in results["summary"] if s["model"] == "naive"]
    results["models"] = ["naive"]
    for r in results["runs"]:
        shutil.copytree(out / r["dir"], tmp_path / r["dir"])
    (tmp_path / "results.json").write_text(json.dumps(results))
    _, html_path = build_report(tmp_path)
    html = html_path.read_text()
    assert html.count("Skipped:") >= 2  # shares, curves
    assert f"<h2>{SECTIONS['curves']}</h2>" in html and "no integrated or catalogue run" in html


def test_decade_buckets_pool_old_decades():
    years = pd.Series([1931, 1955, 1968, 1975, 1990, 1991, 2001, None], dtype="Int64")
    b = decade_buckets(years, min_rows=3)
    assert list(b[:7]) == ["≤1960s", "≤1960s", "≤1960s", "1970s", "1990s", "1990s", "2000s"]
    assert pd.isna(b[7])
