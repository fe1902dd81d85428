"""Load test of the REST service: a bounded run of mixed valid and invalid requests from concurrent clients.

    python benchmarks/load.py --model-dir runs/default                  # starts `genrelens serve` itself
    python benchmarks/load.py --url http://127.0.0.1:8000 --model-dir runs/default   # against a running server

It stops by itself after ``--requests`` requests or ``--time-limit`` seconds, whichever comes first, and prints
requests/s, p50/p99 latency, the count of 5xx answers and of wrong answers (both should be 0), per request kind.
A valid request is right when it gets 200 with genres among the model's labels and every score in [0, 1]; the
fixed probe request must also match a direct ``GenreClassifier`` call within 1e-4 (needs ``--model-dir``). An
invalid request is right when it gets its expected 4xx and error code. Exit status: 0 when both counts are 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

PROBE_PLOT = ("A hard-boiled detective hunts a serial killer through the rainy streets of a corrupt city, "
              "while his own past catches up with him.")
# kind -> (share of requests, expected status, expected error code)
MIX: dict[str, tuple[float, int, str | None]] = {
    "plot": (0.20, 200, None),
    "poster": (0.16, 200, None),
    "plot+poster": (0.16, 200, None),
    "plot+poster (multipart)": (0.08, 200, None),
    "probe": (0.08, 200, None),
    "no input": (0.08, 422, "no_input"),
    "corrupt image": (0.08, 200, None),  # with a plot: scored from it, the poster ignored with a warning
    "huge plot": (0.08, 413, "plot_too_long"),
    "bad base64": (0.08, 422, "invalid_base64"),
}


@dataclass
class Movie:
    plot: str
    poster: bytes


@dataclass
class Tally:
    """What came back, per request kind."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    wrong: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    transport_errors: Counter = field(default_factory=Counter)

    def n(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values()) + sum(self.transport_errors.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, port: int, wait_s: float = 180) -> subprocess.Popen:
    """``genrelens serve`` on 127.0.0.1:port, once /health answers (raises if it does not within wait_s)."""
    cmd = [sys.executable, "-m", "genrelens.cli", "serve", "--model-dir", str(model_dir), "--port", str(port),
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited (rc {proc.returncode}):\n{proc.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"the server did not answer /health within {wait_s:.0f} s")


def load_movies(data: Path, n: int, seed: int) -> list[Movie]:
    """``n`` movies with a plot and a poster from a movie table (CSV, poster paths relative to it)."""
    df = pd.read_csv(data, dtype=str, keep_default_na=False)
    df = df[(df["plot"] != "") & (df["poster"] != "")]
    df = df.sample(min(n, len(df)), random_state=seed)
    return [Movie(r.plot, (data.parent / r.poster).read_bytes()) for r in df.itertuples()]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def build_request(kind: str, rng: random.Random, movies: list[Movie], probe: Movie, max_plot: int) -> dict:
    """httpx keyword arguments for one request of ``kind``."""
    m = rng.choice(movies)
    if kind == "plot":
        return {"json": {"plot": m.plot}}
    if kind == "poster":
        return {"json": {"poster": b64(m.poster)}}
    if kind == "plot+poster":
        return {"json": {"plot": m.plot, "poster": b64(m.poster)}}
    if kind == "plot+poster (multipart)":
        return {"data": {"plot": m.plot}, "files": {"poster": ("poster.jpg", m.poster, "image/jpeg")}}
    if kind == "probe":
        return {"json": {"plot": probe.plot, "poster": b64(probe.poster)}}
    if kind == "no input":
        return {"json": rng.choice([{}, {"plot": "   "}, {"plot": None, "poster": None}])}
    if kind == "corrupt image":
        cut = m.poster[: len(m.poster) // 3]
        return {"json": {"plot": m.plot, "poster": b64(rng.choice([cut, b"GIF89a not really", b"\0" * 64]))}}
    if kind == "huge plot":
        return {"json": {"plot": ("word " * (max_plot // 5 + 10))[: max_plot + 1 + rng.randrange(1000)]}}
    if kind == "bad base64":
        return {"json": {"plot": m.plot, "poster": rng.choice(["%%%not base64%%%", "abc", "data:image/png;base64,@@"])}}
    raise ValueError(kind)


def check(kind: str, r: httpx.Response, labels: list[str], probe_scores: dict[str, float] | None) -> str | None:
    """Why the answer is wrong, or None."""
    _, status, code = MIX[kind]
    if r.status_code != status:
        return f"status {r.status_code} (expected {status}): {r.text[:200]}"
    try:
        body = r.json()
    except ValueError:
        return f"not JSON: {r.text[:200]}"
    if status != 200:
        return None if body.get("error") == code else f"error {body.get('error')!r} (expected {code!r})"
    genres, scores = body.get("genres") or [], body.get("scores") or {}
    if not genres or not set(genres) <= set(labels):
        return f"genres {genres} not a non-empty subset of the labels"
    if set(scores) != set(labels) or not all(0.0 <= v <= 1.0 for v in scores.values()):
        return f"scores {scores} not one value in [0, 1] per label"
    if kind == "corrupt image" and not any(w.startswith("poster ignored") for w in body.get("warnings") or []):
        return f"no 'poster ignored' warning: {body.get('warnings')}"
    if kind == "probe" and probe_scores is not None:
        diff = max(abs(scores[g] - probe_scores[g]) for g in labels)
        if diff > 1e-4:
            return f"probe scores differ from a direct GenreClassifier call by {diff:.2e}"
    return None


async def run(url: str, n_requests: int, concurrency: int, time_limit: float, movies: list[Movie], probe: Movie,
              labels: list[str], probe_scores: dict[str, float] | None, max_plot: int, seed: int,
              timeout: float) -> tuple[Tally, float]:
    rng = random.Random(seed)
    kinds = list(MIX)
    plan = rng.choices(kinds, weights=[MIX[k][0] for k in kinds], k=n_requests)
    tally, next_i = Tally(), 0
    start = time.perf_counter()
    deadline = start + time_limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(client: httpx.AsyncClient, crng: random.Random) -> None:
        nonlocal next_i
        while next_i < len(plan) and time.perf_counter() < deadline:
            kind = plan[next_i]
            next_i += 1
            request = build_request(kind, crng, movies, probe, max_plot)
            t0 = time.perf_counter()
            try:
                r = await client.post(f"{url}/v1/predict", **request)
            except httpx.HTTPError as e:
                tally.transport_errors[type(e).__name__] += 1
                continue
            tally.latencies[kind].append(time.perf_counter() - t0)
            tally.statuses[kind][r.status_code] += 1
            why = check(kind, r, labels, probe_scores)
            if why:
                tally.wrong[kind].append(why)

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(client_loop(client, random.Random(seed * 1000 + i)) for i in range(concurrency)))
    return tally, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def report(tally: Tally, seconds: float, args: argparse.Namespace, url: str, probe_checked: bool) -> dict:
    every = [x for v in tally.latencies.values() for x in v]
    n5xx = sum(c for counts in tally.statuses.values() for s, c in counts.items() if s >= 500)
    n_wrong = sum(len(v) for v in tally.wrong.values())
    summary = {
        "url": url, "requests": tally.n(), "planned": args.requests, "concurrency": args.concurrency,
        "seconds": round(seconds, 2), "requests_per_s": round(tally.n() / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(every, 50), 1), "p99_ms": round(percentile(every, 99), 1),
        "n_5xx": n5xx, "n_wrong": n_wrong, "transport_errors": dict(tally.transport_errors),
        "probe_checked_against_direct_call": probe_checked,
        "by_kind": {k: {"n": len(tally.latencies[k]), "statuses": dict(sorted(tally.statuses[k].items())),
                        "p50_ms": round(percentile(tally.latencies[k], 50), 1),
                        "p99_ms": round(percentile(tally.latencies[k], 99), 1), "wrong": len(tally.wrong[k])}
                    for k in MIX if tally.latencies[k]},
    }
    print(f"load test: {summary['requests']} requests ({args.requests} planned) to {url} from {args.concurrency} "
          f"concurrent clients in {seconds:.1f} s")
    print(f"  {summary['requests_per_s']} requests/s   p50 {summary['p50_ms']} ms   p99 {summary['p99_ms']} ms")
    print(f"  5xx: {n5xx}   wrong answers: {n_wrong}   transport errors: {sum(tally.transport_errors.values())}"
          f"   probe checked against a direct GenreClassifier call: {'yes' if probe_checked else 'no'}")
    print(f"  {'kind':<26}{'n':>6}  {'statuses':<22}{'p50 ms':>9}{'p99 ms':>9}{'wrong':>7}")
    for k, v in summary["by_kind"].items():
        statuses = " ".join(f"{s}x{c}" for s, c in v["statuses"].items())
        print(f"  {k:<26}{v['n']:>6}  {statuses:<22}{v['p50_ms']:>9}{v['p99_ms']:>9}{v['wrong']:>7}")
    for k, whys in tally.wrong.items():
        for why in whys[:3]:
            print(f"  wrong ({k}): {why}")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", help="A running server (default: start `genrelens serve` on a free 127.0.0.1 port).")
    p.add_argument("--model-dir", type=Path, help="Model to serve (and to compute the probe's expected scores); "
                   "default: $GENRELENS_MODEL_DIR or runs/default.")
    p.add_argument("--data", type=Path, help="Movie table to draw plots and posters from (default: the default "
                   "data set).")
    p.add_argument("--requests", type=int, default=2000, help="Requests to send (default 2000).")
    p.add_argument("--concurrency", type=int, default=32, help="Concurrent clients (default 32).")
    p.add_argument("--time-limit", type=float, default=300.0, help="Stop after this many seconds (default 300).")
    p.add_argument("--timeout", type=float, default=60.0, help="Per-request timeout in seconds.")
    p.add_argument("--movies", type=int, default=64, help="Distinct real movies to send.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="Also write the summary as JSON here.")
    args = p.parse_args(argv)

    from genrelens.bundle import is_model_folder
    from genrelens.data.table import resolve_data_path
    from genrelens.paths import default_model_dir
    from genrelens.predict import GenreClassifier

    model_dir = args.model_dir or default_model_dir()
    data = resolve_data_path(args.data)
    movies = load_movies(data, args.movies, args.seed)
    if not movies:
        raise SystemExit(f"no movie with a plot and a poster in {data}")
    probe = Movie(PROBE_PLOT, movies[0].poster)
    probe_scores = None
    clf = None
    if is_model_folder(model_dir):
        clf = GenreClassifier.load(model_dir)
        proba, _ = clf.score([probe.plot], [probe.poster])  # bytes: decoded as the service decodes them
        probe_scores = dict(zip(clf.labels, proba[0].tolist()))
    elif not args.url:
        raise SystemExit(f"no model in {model_dir}: give --model-dir (or --url of a running server)")

    server, url = None, args.url
    if url is None:
        port = free_port()
        print(f"starting: genrelens serve --model-dir {model_dir} --port {port}", flush=True)
        server = start_server(Path(model_dir), port)
        url = f"http://127.0.0.1:{port}"
    try:
        info = httpx.get(f"{url}/v1/model", timeout=30).json()
        labels, max_plot = info["labels"], info["limits"]["max_plot_chars"]
        if clf is not None and labels != clf.labels:
            raise SystemExit(f"the server's labels {labels} are not --model-dir's {clf.labels}")
        tally, seconds = asyncio.run(run(url.rstrip("/"), args.requests, args.concurrency, args.time_limit, movies,
                                         probe, labels, probe_scores, max_plot, args.seed, args.timeout))
        if server is not None:
            health = httpx.get(f"{url}/health", timeout=10).json()
            print(f"  server batching: {json.dumps(health.get('batching'))}")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    summary = report(tally, seconds, args, url, probe_scores is not None)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["n_5xx"] == 0 and summary["n_wrong"] == 0 and not summary["transport_errors"] else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
