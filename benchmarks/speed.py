"""Inference speed of genrelens against the plain baseline a user would write, on the same movies and model.

    python benchmarks/speed.py [--n 512] [--model-dir DIR] [--requests 200] [--precision auto|fp32|bf16|int8]
    python benchmarks/speed.py --n 256 --no-rest --compare fp32,bf16,int8   # (b) in each precision, interleaved
    python benchmarks/speed.py --train 1000 --full-steps 0                 # fine-tuning rate, fp32 vs bf16
    python benchmarks/speed.py --n 128 --long 6                            # (b) on synopses of 6 token windows

(a) baseline: transformers AutoModel in fp32 eager torch (tokenizer padding to max_length, mean pooling;
    for a windowed model the tokenizer's overflowing windows, pooled), EfficientNet-Lite in eager torch with
    PIL loading/resizing each poster, one movie at a time, then the trained head (and the lexical channel's
    late fusion, if the model has one); (b) ``GenreClassifier.score`` on the whole list (the path of the CLI,
    the service and the benchmark); (c) single-movie latency through ``genrelens serve`` (sequential POST
    /v1/predict with a base64 poster and a ~100-word plot) and the server's peak RSS. The last line is
    ``speedup: X.Xx`` = (b)/(a).
(a) is always fp32; (b) and (c) run in ``--precision`` (default auto: see genrelens/encoders/precision.py). The
CPU's model name and bf16/int8 flags are printed first: speed figures mean nothing without them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from genrelens import bundle  # noqa: E402
from genrelens.data.split import select  # noqa: E402
from genrelens.data.table import load_table  # noqa: E402
from genrelens.encoders.precision import cpu_flags  # noqa: E402
from genrelens.models.thresholds import decide  # noqa: E402
from genrelens.paths import default_model_dir  # noqa: E402
from genrelens.predict import GenreClassifier  # noqa: E402

WORDS = 100


def test_movies(clf: GenreClassifier, n: int, data: Path | None) -> tuple[list[str], list[str]]:
    """Texts and poster paths of the first ``n`` test movies (model's split.json) having a plot and a poster; the
    text is the plot, or for a model that reads titles the title and the plot (what it reads)."""
    df, _ = load_table(data, skip_bad=True)  # None: the default data
    df = select(df, clf.bundle.split_ids("test"))
    df = df[(df["plot"].str.strip() != "") & df["poster"].notna()].head(n)
    return clf.texts(list(df["plot"]), list(df["title"]), len(df)), [str(p) for p in df["poster"]]


class Baseline:
    """What a user would write without genrelens: eager fp32 torch, one movie at a time."""

    def __init__(self, clf: GenreClassifier) -> None:
        from transformers import AutoModel, AutoTokenizer

        from genrelens.encoders.poster import load_efficientnet, weights_file

        text_dir = clf.model_dir / bundle.TEXT_ENCODER
        self.tokenizer = AutoTokenizer.from_pretrained(text_dir)
        self.text = AutoModel.from_pretrained(text_dir).eval()
        pe = clf.poster_encoder
        self.cnn = load_efficientnet(pe.arch, weights_file(pe.arch)).eval()
        self.size, self.short = pe.input_size, pe.resize_size
        self.max_length, self.head = clf.config.max_length, clf.head
        te = clf.text_encoder  # a windowed model (catalogue) reads up to `windows` overlapping windows per plot
        self.windows, self.stride, self.pooling = te.windows, te.stride, te.window_pooling
        self.lexical = clf.bundle.lexical  # the late-fused TF-IDF channel, if the model has one

    def poster_pixels(self, path: str) -> torch.Tensor:
        from PIL import Image

        image = Image.open(path).convert("RGB")
        w, h = image.size
        scale = self.short / min(w, h)
        new = (max(self.size, round(w * scale)), max(self.size, round(h * scale)))
        image = image.resize(new, Image.Resampling.BILINEAR, reducing_gap=3.0)
        left, top = (new[0] - self.size) // 2, (new[1] - self.size) // 2
        x = np.asarray(image.crop((left, top, left + self.size, top + self.size)), dtype=np.float32)
        return torch.from_numpy(((x - 127.0) / 128.0).transpose(2, 0, 1).copy())[None]

    @torch.no_grad()
    def predict_one(self, plot: str, poster: str) -> np.ndarray:
        kw = {"stride": self.stride, "return_overflowing_tokens": True} if self.windows > 1 else {}
        tok = self.tokenizer([plot], padding="max_length", truncation=True, max_length=self.max_length,
                             return_tensors="pt", **kw)
        tok = {k: tok[k][: self.windows] for k in ("input_ids", "attention_mask", "token_type_ids") if k in tok}
        hidden = self.text(**tok).last_hidden_state
        mask = tok["attention_mask"].unsqueeze(-1).float()
        windows = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # [n_windows, dim]
        text = (windows.amax(0) if self.pooling == "max" else windows.mean(0))[None]
        poster = self.cnn.extract_features(self.poster_pixels(poster)).mean((2, 3))
        ones = torch.ones(1, dtype=torch.bool)
        logits = self.head({"text": text, "text_mask": ones, "poster": poster, "poster_mask": ones})
        proba = torch.sigmoid(logits)[0].numpy()
        if self.lexical is not None:
            w = self.lexical.weight
            proba = (1 - w) * proba + w * self.lexical.proba([plot])[0]
        return proba


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm(pid: int, key: str) -> int:
    """``VmHWM`` (peak RSS) or ``VmRSS`` of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def rest_latency(model_dir: Path, plots: list[str], posters: list[str], n_requests: int,
                 serve_args: tuple[str, ...] = ()) -> dict:
    """Start ``genrelens serve``, then time ``n_requests`` sequential single-movie requests."""
    import httpx

    port = free_port()
    exe = Path(sys.executable).parent / "genrelens"
    cmd = [str(exe), "serve", "--model-dir", str(model_dir), "--port", str(port), "--log-level", "warning", *serve_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {proc.stderr.read()[-2000:]}")
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - started > 600:
                    raise RuntimeError("server not up after 600 s")
                time.sleep(0.2)
            startup = time.perf_counter() - started
            rss_loaded = vm(proc.pid, "VmRSS")
            long_plots = [i for i, p in enumerate(plots) if len(p.split()) >= WORDS] or list(range(len(plots)))
            bodies = [json.dumps({"plot": " ".join(plots[i].split()[:WORDS]),
                                  "poster": base64.b64encode(Path(posters[i]).read_bytes()).decode()})
                      for i in long_plots]
            headers = {"content-type": "application/json"}
            for k in range(5):  # warm-up, not timed
                client.post("/v1/predict", content=bodies[k % len(bodies)], headers=headers).raise_for_status()
            times = []
            for k in range(n_requests):
                t = time.perf_counter()
                r = client.post("/v1/predict", content=bodies[k % len(bodies)], headers=headers)
                times.append(time.perf_counter() - t)
                r.raise_for_status()
            health = client.get("/health").json()
        return {"p50_ms": 1000 * float(np.percentile(times, 50)), "p99_ms": 1000 * float(np.percentile(times, 99)),
                "mean_ms": 1000 * float(np.mean(times)), "startup_s": startup, "rss_loaded": rss_loaded,
                "peak_rss": vm(proc.pid, "VmHWM"), "n": n_requests, "distinct_movies": len(bodies),
                "batching": health.get("batching")}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def train_speed(clf: GenreClassifier, data: Path | None, n_plots: int, full_steps: int) -> None:
    """Text fine-tuning rate on ``n_plots`` training plots: full fine-tuning (every layer, ``full_steps``
    steps) vs the top 2 layers over cached frozen-bottom states (genrelens/train/finetune.py, one epoch),
    the latter in fp32 and under bf16 autocast (``--precision bf16`` of train/benchmark)."""
    from genrelens.data.labels import LabelSet
    from genrelens.encoders.registry import build_text_encoder
    from genrelens.models.losses import get_loss
    from genrelens.train.finetune import TopLayersClassifier, bottom_states, state_batches

    cfg = clf.config
    df, _ = load_table(data, skip_bad=True)  # the default data; plots outside the model's test split
    df = df[~df["id"].isin(set(clf.bundle.split_ids("test")))]
    df = df[df["plot"].str.strip() != ""].head(n_plots)
    texts, y = list(df["plot"]), LabelSet(clf.labels).encode(df["genres"]).astype(np.float32)
    loss_fn, bs = get_loss(cfg.loss), cfg.ft_batch_size

    enc = build_text_encoder(cfg.text_encoder, max_length=cfg.max_length)
    head = torch.nn.Linear(enc.dim, len(clf.labels))
    enc.model.train()
    opt = torch.optim.AdamW([*enc.model.parameters(), *head.parameters()], lr=cfg.ft_lr)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    full = float("nan")
    for _ in range(full_steps):
        b = rng.choice(len(texts), bs, replace=False)
        loss = loss_fn(head(enc.embed(enc.tokenize([texts[i] for i in b]))), torch.as_tensor(y[b]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    if full_steps:
        full = full_steps * bs / (time.perf_counter() - t)
        print(f"full fine-tuning ({len(enc.model.encoder.layer)} layers, batch {bs}, {full_steps} steps): "
              f"{full:.1f} plots/s per training step")

    rates = {}
    for precision in ("fp32", "bf16", "fp32", "bf16"):  # interleaved twice: the machine's load drifts
        torch.manual_seed(0)
        enc = build_text_encoder(cfg.text_encoder, max_length=cfg.max_length)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
        t = time.perf_counter()
        with autocast:
            states = bottom_states(enc.model, enc.tokenizer, texts, 2, cfg.max_length, progress=False)
        sec_states = time.perf_counter() - t
        clf2 = TopLayersClassifier(enc.model, 2, len(clf.labels)).train()
        opt = torch.optim.AdamW(clf2.parameters(), lr=cfg.ft_lr)
        t = time.perf_counter()
        for batch, target in state_batches(states, y, np.arange(len(texts)), bs, 0, 0):
            with autocast:
                logits = clf2(batch)
            loss = loss_fn(logits.float(), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sec_epoch = time.perf_counter() - t
        top = len(texts) / sec_epoch
        rates.setdefault(precision, []).append(sec_states + sec_epoch)
        print(f"top-2 layers over cached states, {precision}: frozen bottom once {len(texts) / sec_states:.1f} "
              f"plots/s ({sec_states:.1f} s), then {top:.1f} plots/s per training step (one epoch of {len(texts)} "
              f"plots, {sec_epoch:.1f} s){f'; {top / full:.1f}x the full fine-tuning rate' if full_steps else ''}; "
              f"last loss {loss.item():.6f}")
    best = {p: min(v) for p, v in rates.items()}
    print(f"bottom + one epoch, best of 2: fp32 {best['fp32']:.1f} s, bf16 {best['bf16']:.1f} s "
          f"({best['fp32'] / best['bf16']:.2f}x)")


def long_speed(clf: GenreClassifier, plots: list[str], posters: list[str], windows: int) -> None:
    """(b) on synopses of ``windows`` token windows each: every test plot followed by the next ones until the
    encoder reads that many windows of it (it reads at most its own ``windows``)."""
    te = clf.text_encoder
    longs = []
    for i in range(len(plots)):
        text, k = plots[i], i
        while len(te.window_ids([text])[1]) < windows and k < i + 40:
            k += 1
            text += " " + plots[k % len(plots)]
        longs.append(text)
    n_win = np.bincount(te.window_ids(longs)[1])
    clf.score(longs[:4], posters[:4])  # warm-up
    t, c = time.perf_counter(), time.process_time()
    clf.score(longs, posters, calibrated=False)
    sec, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"(b-long) GenreClassifier.score on {len(longs)} synopses of {n_win.mean():.2f} token windows each "
          f"(encoder reads at most {te.windows}; {np.mean([len(x.split()) for x in longs]):.0f} words), poster too: "
          f"{len(longs) / sec:.1f} movies/s ({sec:.1f} s wall, {1000 * cpu / len(longs):.0f} ms CPU per movie); load "
          f"average {os.getloadavg()[0]:.1f}")


def compare_precisions(clf: GenreClassifier, plots: list[str], posters: list[str], precisions: list[str]) -> None:
    """(b) in each precision on the same movies, 2 interleaved rounds; agreement with fp32."""
    rates: dict[str, list[float]] = {p: [] for p in precisions}
    single: dict[str, list[float]] = {p: [] for p in precisions}
    out: dict[str, np.ndarray] = {}
    for _ in range(2):
        for p in precisions:
            clf.set_precision(p)
            clf.score(plots[:8], posters[:8])  # warm-up
            t = time.perf_counter()
            proba = clf.score(plots, posters)[0]
            rates[p].append(len(plots) / (time.perf_counter() - t))
            for i in range(10):
                t = time.perf_counter()
                clf.score(plots[i : i + 1], posters[i : i + 1])
                single[p].append(1000 * (time.perf_counter() - t))
            out[p] = proba
    clf.set_precision("fp32")
    ref = clf.score(plots, posters)[0]
    for p in precisions:
        same = float((clf.decide(ref) == clf.decide(out[p])).all(1).mean())
        print(f"(b) {p}: {max(rates[p]):.1f} movies/s best of 2 ({min(rates[p]):.1f} worst); one movie p50 "
              f"{np.median(single[p]):.1f} ms; max |p - p_fp32| {np.abs(out[p] - ref).max():.2e}; identical genres "
              f"on {100 * same:.2f}% of {len(plots)} test movies")
    print(f"load average after: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs")


def runtime(session) -> str:
    """Which runtime a text encoder's session is: ONNX Runtime, OpenVINO (the bf16 path) or none (eager torch)."""
    from genrelens.encoders.onnx import OpenVINOSession

    if session is None:
        return "torch"
    return "OpenVINO" if isinstance(session, OpenVINOSession) else "ONNX Runtime"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=512, help="test movies with plot and poster")
    ap.add_argument("--model-dir", type=Path, default=None, help="default: genrelens' default model dir")
    ap.add_argument("--data", type=Path, default=None, help="movie table (default: the default data)")
    ap.add_argument("--requests", type=int, default=200, help="sequential REST requests")
    ap.add_argument("--no-rest", action="store_true", help="skip (c)")
    ap.add_argument("--baseline-threads", type=int, default=0,
                    help="torch threads for (a) only (default: torch's default, as a plain user gets)")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra `genrelens serve` option (repeatable)")
    ap.add_argument("--train", type=int, default=0, metavar="N_PLOTS",
                    help="instead: measure text fine-tuning speed on N_PLOTS training plots (e.g. 1000)")
    ap.add_argument("--full-steps", type=int, default=10, help="full fine-tuning steps timed with --train")
    ap.add_argument("--precision", default="auto", help="encoder precision of (b) and (c): auto, fp32, bf16, int8")
    ap.add_argument("--long", type=int, default=0, metavar="WINDOWS",
                    help="instead: time (b) on long synopses that fill WINDOWS token windows (test plots joined)")
    ap.add_argument("--compare", default="", help="comma list of precisions: time (b) in each (interleaved, "
                    "2 rounds) with agreement against fp32, instead of the usual run")
    args = ap.parse_args(argv)
    model_dir = args.model_dir or default_model_dir()
    from genrelens.encoders.precision import describe_cpu

    cpu = describe_cpu()
    print(f"CPU {cpu['model']}; flags {' '.join(cpu['flags'])}; torch capability {cpu['torch_capability']}; "
          f"precision candidates {cpu['candidates'] or 'none (fp32 only)'}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; model {model_dir}; "
          f"load average {os.getloadavg()[0]:.1f} (1 min) before the run")

    t = time.perf_counter()
    clf = GenreClassifier.load(model_dir, precision="fp32" if args.compare or args.train else args.precision,
                               report=print)
    load_b = time.perf_counter() - t
    if clf.precision_choice is not None:
        print(clf.precision_choice.summary())
    if clf.text_encoder is None or clf.poster_encoder is None:
        sys.exit(f"needs a model that reads text and poster (integrated, catalogue), {model_dir} holds {clf.name!r}")
    if args.train:
        return train_speed(clf, args.data, args.train, args.full_steps)
    plots, posters = test_movies(clf, args.n, args.data)
    if args.long:
        return long_speed(clf, plots, posters, args.long)
    if args.compare:
        return compare_precisions(clf, plots, posters, [p.strip() for p in args.compare.split(",") if p.strip()])
    n = len(plots)
    print(f"{n} test movies with plot and poster; genrelens model load {load_b:.1f} s "
          f"(text on {runtime(clf.text_encoder.session)}); precision {clf.precision}")

    threads = torch.get_num_threads()
    if args.baseline_threads:
        torch.set_num_threads(args.baseline_threads)
    base = Baseline(clf)
    base.predict_one(plots[0], posters[0])  # warm-up
    t, c = time.perf_counter(), time.process_time()
    pa = np.stack([base.predict_one(p, q) for p, q in zip(plots, posters, strict=True)])
    sec_a, cpu_a = time.perf_counter() - t, time.process_time() - c
    del base
    torch.set_num_threads(threads)

    clf.score(plots[:8], posters[:8])  # warm-up
    t, c = time.perf_counter(), time.process_time()
    pb, errors = clf.score(plots, posters, calibrated=False)  # raw scores, as the baseline's (calibration: ~free)
    sec_b, cpu_b = time.perf_counter() - t, time.process_time() - c

    diff = float(np.abs(pa - pb).max())
    same = float((decide(pa, clf.raw_thresholds) == decide(pb, clf.raw_thresholds)).all(1).mean())
    rate_a, rate_b = n / sec_a, n / sec_b
    tag = f", {args.baseline_threads} torch thread(s)" if args.baseline_threads else ""
    print(f"(a) baseline (eager fp32 torch, one movie at a time{tag}): {rate_a:.1f} movies/s ({sec_a:.1f} s wall, "
          f"{1000 * cpu_a / n:.0f} ms CPU per movie)")
    print(f"(b) genrelens GenreClassifier.score (batch, {clf.precision}):    {rate_b:.1f} movies/s ({sec_b:.1f} s "
          f"wall, "
          f"{1000 * cpu_b / n:.0f} ms CPU per movie)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    print(f"agreement: max |p_a - p_b| = {diff:.2e}; identical predicted genres on {100 * same:.2f}% of {n} "
          f"movies; input problems in (b): {len(errors)}")
    if not args.no_rest:
        r = rest_latency(model_dir, plots, posters, args.requests, ("--precision", clf.precision, *args.serve_arg))
        print(f"(c) REST POST /v1/predict, {r['n']} sequential requests ({r['distinct_movies']} movies, poster + "
              f"{WORDS}-word plot): p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, mean {r['mean_ms']:.1f} ms")
        print(f"    server: up in {r['startup_s']:.1f} s, RSS after load {r['rss_loaded'] / 2**20:.0f} MiB, "
              f"peak RSS (VmHWM) {r['peak_rss'] / 2**20:.0f} MiB; batching {r['batching']}")
    # the targets set for this CPU kind: with AMX 200 movies/s and 25 ms; without it (AVX2, AVX-512) 60 and 40
    amx = "amx_bf16" in cpu_flags()
    batch, rest = (200, 25) if amx else (60, 40)
    met = {"speedup >= 5x": rate_b / rate_a >= 5, f"(b) >= {batch} movies/s": rate_b >= batch,
           "same genres on >= 99%": same >= 0.99}
    if not args.no_rest:
        met.update({f"REST p50 <= {rest} ms": r["p50_ms"] <= rest, "server peak RSS < 1.5 GB": r["peak_rss"] < 1.5e9})
    print(f"targets ({'AMX' if amx else 'no AMX'}): " + "; ".join(f"{k}: {'met' if v else 'NOT met'}"
                                                            for k, v in met.items()))
    print(f"speedup: {rate_b / rate_a:.1f}x")


if __name__ == "__main__":
    main()
