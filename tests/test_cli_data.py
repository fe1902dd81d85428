"""genrelens.cli.data: `genrelens data validate` exit codes and `genrelens data stats` outputs."""

import json

from typer.testing import CliRunner

from genrelens.cli import app

HEADER = "id,title,year,language,plot,genres,poster\n"


def _head(real_data, tmp_path, n=120):
    lines = real_data.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp_path / "head.csv"
    out.write_text("".join(lines[: n + 1]), encoding="utf-8")
    return out


def test_validate_exit_codes(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "m1,One,1999,en,A plot.,Drama,\nm2,Two,2001,en,Another.,Comedy|Drama,\n")
    r = CliRunner().invoke(app, ["data", "validate", "--data", str(good), "--no-posters"])
    assert r.exit_code == 0, r.output
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "m1,One,1999,en,A plot.,Drama,\nm1,Dup,2001,en,Another.,Comedy,\n")
    r = CliRunner().invoke(app, ["data", "validate", "--data", str(bad), "--no-posters"])
    assert r.exit_code == 1 and "m1" in r.output
    r = CliRunner().invoke(app, ["data", "validate", "--data", str(tmp_path / "none.csv")])
    assert r.exit_code == 2


def test_stats_writes_json_and_markdown(real_data, tmp_path):
    data = _head(real_data, tmp_path)
    r = CliRunner().invoke(app, ["data", "stats", "--data", str(data), "--out", str(tmp_path / "stats"),
                                 "--oversample", "none"])
    assert r.exit_code == 0, r.output
    stats = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert "Drama" in json.dumps(stats) and (tmp_path / "stats" / "stats.md").read_text().strip()


def test_stats_user_errors_exit_2(tmp_path):
    r = CliRunner().invoke(app, ["data", "stats", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "error:" in r.output
    assert CliRunner().invoke(app, ["data", "stats", "--seed", "-1"]).exit_code == 2


def test_stats_counts_a_bad_row_once(real_data, tmp_path):
    """An all-empty row (empty id, no genres, neither plot nor poster) is one skipped row, not three."""
    data = _head(real_data, tmp_path, n=20)
    columns = data.read_text(encoding="utf-8").splitlines()[0].count(",")
    with data.open("a", encoding="utf-8") as f:
        f.write("," * columns + "\n")
    r = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["data", "stats", "--data", str(data), "--out",
                                                       str(tmp_path / "stats"), "--oversample", "none"])
    assert r.exit_code == 0, r.output
    assert "skipped 1 bad row (3 problems); run `genrelens data validate`" in r.output and "20 rows" in r.output


def test_stats_of_a_small_table_gives_every_figure_but_the_split(real_data, tmp_path):
    """Seven rows: no split to show (it needs 10), but the rest of the figures (it failed: 'need at least 10 rows
    to split')."""
    r = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["data", "stats", "--data", str(_head(real_data, tmp_path, 7)),
                                                       "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert "too few to split (at least 10)" in r.output
    assert json.loads((tmp_path / "s" / "stats.json").read_text())["table1"] is None
