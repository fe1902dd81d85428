"""Every entry point's answers for the same movies, to compare two versions of genrelens on one model folder.

    python scripts/entry_points.py dump MODEL_DIR OUT_DIR [--n 48] [--data TABLE]   # with one version installed
    python scripts/entry_points.py compare OUT_A OUT_B                              # then: what differs

``dump`` takes the first ``n`` test movies of the model's split (the default data unless ``--data``) and asks
the Python API (``predict``, ``predict_proba``), the CLI (``predict --input`` on a table and ``predict --plot
... --json`` on a few movies) and the REST service (``POST /v1/predict`` per movie and ``/v1/predict/batch``)
for their genres and scores. It uses only what both sides of a refactoring offer. ``compare`` prints, per entry
point, how many movies got the same genres and the largest score difference (0.0: bit-identical figures).
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def _exe() -> str:
    return str(Path(sys.executable).parent / "genrelens")


def _movies(model_dir: Path, n: int, data: Path | None):
    """The model (``GenreClassifier``) and the first ``n`` movies of its test split."""
    from genrelens.bundle import read_artifact
    from genrelens.data.table import load_table
    from genrelens.predict import GenreClassifier

    clf = GenreClassifier.load(model_dir)
    split = read_artifact(model_dir, "split")
    df, _ = load_table(data, skip_bad=True)
    test = df[df["id"].isin(set(split["test"]))].head(n).reset_index(drop=True)
    test.attrs.update(df.attrs)
    return clf, test


def dump(model_dir: Path, out: Path, n: int, data: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    clf, df = _movies(model_dir, n, data)
    root = Path(df.attrs["root"])
    plots = [p or None for p in df["plot"]]
    titles = [t or None for t in df["title"]]
    posters = [p if isinstance(p, str) and p else None for p in df["poster"]]
    rows = [i for i in range(len(df)) if plots[i] or posters[i]]  # movies the model can read
    proba = clf.predict_proba([plots[i] for i in rows], [posters[i] for i in rows],
                              titles=[titles[i] for i in rows])
    genres = clf.predict([plots[i] for i in rows], [posters[i] for i in rows], titles=[titles[i] for i in rows])
    ids = [str(df["id"].iloc[i]) for i in rows]
    _write(out / "python.json", {i: {"genres": g, "scores": dict(zip(clf.labels, map(float, p)))}
                                 for i, g, p in zip(ids, genres, proba)})

    table = df[["id", "title", "plot"]].copy()
    table["poster"] = [Path(p).relative_to(root).as_posix() if p else "" for p in posters]
    table.to_csv(out / "movies.csv", index=False)
    subprocess.run([_exe(), "predict", "--input", str(out / "movies.csv"), "--output", str(out / "cli_table.csv"),
                    "--posters", str(root), "--model-dir", str(model_dir), "--no-progress"], check=True)
    cli = pd.read_csv(out / "cli_table.csv", dtype={"id": str}, keep_default_na=False)
    _write(out / "cli_table.json", {r["id"]: {"genres": [g for g in str(r["genres"]).split("|") if g],
                                              "scores": {lab: float(r[f"p_{lab}"]) for lab in clf.labels}}
                                    for _, r in cli.iterrows()})

    one = {}
    for i in rows[:4]:
        cmd = [_exe(), "predict", "--json", "--model-dir", str(model_dir)]
        cmd += ["--plot", plots[i]] if plots[i] else []
        cmd += ["--title", titles[i]] if titles[i] else []
        cmd += ["--poster", posters[i]] if posters[i] else []
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        one[ids[rows.index(i)]] = {"genres": r["genres"], "scores": r["scores"]}
    _write(out / "cli_one.json", one)

    def body(i: int) -> dict:
        b = {"plot": plots[i], "title": titles[i]}
        if posters[i]:
            b["poster"] = base64.b64encode(Path(posters[i]).read_bytes()).decode()
        return {k: v for k, v in b.items() if v}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([_exe(), "serve", "--model-dir", str(model_dir), "--port", str(port), "--log-level",
                             "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
            for _ in range(600):
                try:
                    if c.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.5)
            single = {ids[k]: c.post("/v1/predict", json=body(i)).raise_for_status().json()
                      for k, i in enumerate(rows)}
            batch = c.post("/v1/predict/batch", json={"movies": [{"id": ids[k], **body(i)} for k, i in
                                                                 enumerate(rows)]}).raise_for_status().json()
    finally:
        proc.terminate()
        proc.wait(30)
    _write(out / "rest_single.json", {k: {"genres": v["genres"], "scores": v["scores"]} for k, v in single.items()})
    _write(out / "rest_batch.json", {r["id"]: {"genres": r["genres"], "scores": r["scores"]}
                                     for r in batch["results"]})
    print(f"{len(rows)} movies (of {len(df)}) through python, cli_table, cli_one (first 4), rest_single, "
          f"rest_batch -> {out}")


def _write(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=1, sort_keys=True))


def compare(a: Path, b: Path) -> None:
    for name in ("python", "cli_table", "cli_one", "rest_single", "rest_batch"):
        x, y = (json.loads((d / f"{name}.json").read_text()) for d in (a, b))
        common = sorted(set(x) & set(y))
        same = sum(x[k]["genres"] == y[k]["genres"] for k in common)
        diffs = [abs(x[k]["scores"][lab] - y[k]["scores"][lab]) for k in common for lab in x[k]["scores"]]
        print(f"{name:12s} movies {len(common)} (only in one: {len(set(x) ^ set(y))}); identical genres {same}; "
              f"max score diff {max(diffs, default=float('nan')):.3g}; scores identical: "
              f"{all(x[k]['scores'] == y[k]['scores'] for k in common)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("model_dir", type=Path)
    d.add_argument("out", type=Path)
    d.add_argument("--n", type=int, default=48)
    d.add_argument("--data", type=Path, default=None)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.cmd == "dump":
        dump(args.model_dir.resolve(), args.out.resolve(), args.n, args.data)
    else:
        compare(args.a, args.b)


if __name__ == "__main__":
    main()
