"""The precision accuracy guard: a reduced precision (bf16, int8) is used by ``auto`` only once it has been shown,
on the model's own validation split, to keep its predictions.

* **Rule** (``judge``): the candidate keeps weighted F1 within ``MAX_F1_DROP`` of fp32 and identical genres on at
  least ``MIN_IDENTICAL`` of the movies, and scores ``SPEED_MOVIES`` of them faster than fp32 (best of 2
  interleaved rounds, so a slower path is never chosen).
* **Running it** (``check_precisions``): at the end of ``genrelens train``, in ``genrelens calibrate`` and in
  ``genrelens precision-check``; once per model weights (``bundle.weights_key``) + CPU kind (its relevant flags,
  ``encoders.precision.cpu_flags``) + precision. Results are saved in the model folder (one entry per CPU kind)
  and in ``<cache>/precision/``; ``GenreClassifier.use_precision`` reads them (``encoders.precision.resolve``).

The precision paths themselves (what bf16 and int8 run, per CPU kind) live in ``genrelens.encoders.precision``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from genrelens.config import RunConfig
from genrelens.encoders import precision as prec
from genrelens.encoders.precision import Choice, GuardResult
from genrelens.errors import GenrelensError, ModelError
from genrelens.predict import GenreClassifier

MAX_F1_DROP = 0.003
MIN_IDENTICAL = 0.99
SPEED_MOVIES = 128

Report = Callable[[str], None]


def judge(y_true: np.ndarray, pred_fp32: np.ndarray, pred: np.ndarray) -> tuple[bool, float, float, float, str]:
    """The guard's rule on multi-hot ``[n, n_labels]`` arrays: ``(passed, f1_fp32, f1, identical, reason)``."""
    from sklearn.metrics import f1_score

    if not len(pred):
        return False, 0.0, 0.0, 0.0, "no validation movies to check it on (an adapted model keeps none): it stays fp32"
    f1_32 = float(f1_score(y_true, pred_fp32, average="weighted", zero_division=0))
    f1_c = float(f1_score(y_true, pred, average="weighted", zero_division=0))
    identical = float((np.asarray(pred_fp32) == np.asarray(pred)).all(1).mean())
    reasons = []
    if f1_32 - f1_c > MAX_F1_DROP:
        reasons.append(f"weighted F1 drops by {f1_32 - f1_c:.4f} > {MAX_F1_DROP}")
    if identical < MIN_IDENTICAL:
        reasons.append(f"identical genres on {100 * identical:.2f}% < {100 * MIN_IDENTICAL:.0f}%")
    return not reasons, f1_32, f1_c, identical, "; ".join(reasons)


def validation_movies(model_dir: Path, config: RunConfig, labels: list[str]
                      ) -> tuple[list[str], list, Path, np.ndarray, list[str]]:
    """``(plots, posters, root, y [n, n_labels], titles)`` of the model's validation split (rows with a label),
    from its training table read as training read it (``config``)."""
    from genrelens.bundle import labelled_rows, read_split

    df, _ = config.read_table()
    part, y, _ = labelled_rows(df, read_split(model_dir, "val"), labels)
    return list(part["plot"]), list(part["poster"]), Path(df.attrs["root"]), y, list(part["title"])


def check_precision(clf: GenreClassifier, precision: str) -> GuardResult:
    """Score the validation split with ``clf`` in fp32 (through the feature cache, which usually holds these
    movies from training) and in ``precision`` (no cache), then ``judge``. Leaves ``clf`` in fp32."""
    from genrelens.encoders.cache import FeatureCache

    if clf.model_dir is None:
        raise ModelError("the accuracy guard needs a model folder (its validation split)")
    plots, posters, root, y, titles = validation_movies(clf.model_dir, clf.config, clf.labels)
    plots = clf.texts(plots, titles, len(plots))  # what the model reads (with the title, for a model that reads it)
    saved = clf.cache
    try:
        clf.set_precision("fp32")
        clf.cache = FeatureCache(clf.config.cache_dir) if clf.config.cache_dir else FeatureCache()
        p32 = clf.score(plots, posters, root=root)[0]
        clf.cache = None
        clf.set_precision(precision)
        t = time.perf_counter()
        pc = clf.score(plots, posters, root=root)[0]
        seconds = time.perf_counter() - t
    finally:
        clf.cache = saved
        clf.set_precision("fp32")
    passed, f1_32, f1_c, identical, reason = judge(y, clf.decide(p32), clf.decide(pc))
    diff = float(np.abs(p32 - pc).max()) if len(pc) else 0.0
    rate_32, rate = speeds(clf, precision, plots[:SPEED_MOVIES], posters[:SPEED_MOVIES], root) if passed else (0, 0)
    if passed and rate <= rate_32:
        passed, reason = False, f"not faster than fp32 here ({rate:.1f} vs {rate_32:.1f} movies/s)"
    return GuardResult(precision, passed, len(y), f1_32, f1_c, identical, diff, seconds, rate_32, rate, reason)


def speeds(clf: GenreClassifier, precision: str, plots: list[str], posters: list, root: Path) -> tuple[float, float]:
    """movies/s of fp32 and ``precision`` on the same movies (no cache), best of 2 interleaved rounds."""
    best = {"fp32": 0.0, precision: 0.0}
    saved = clf.cache
    clf.cache = None
    try:
        for _ in range(2):
            for p in best:
                clf.set_precision(p)
                t = time.perf_counter()
                clf.score(plots, posters, root=root)
                best[p] = max(best[p], len(plots) / max(time.perf_counter() - t, 1e-9))
    finally:
        clf.cache = saved
        clf.set_precision("fp32")
    return best["fp32"], best[precision]


def run_checks(key: str, run_guard: Callable[[str], GuardResult], flags: Iterable[str] | str | None = None,
               cache_dir: Path | None = None, report: Report | None = None,
               force: bool = False, text: bool = True) -> list[GuardResult]:
    """Run the accuracy guard (``run_guard(precision)``) for this CPU's candidates, fastest first, until one
    passes; a result already in the machine's cache is reused unless ``force``. Results are cached in
    ``<cache>/precision/`` (a check that could not run is not: tried again next time)."""
    f = prec.cpu_flags(flags)
    out: list[GuardResult] = []
    for precision in prec.candidates(f, text):
        path = prec.guard_path(key, f, precision, cache_dir)
        result = None if force else prec.read_guard(path)
        if result is None:
            if report:
                report(f"checking {precision} against fp32 on the model's validation split (once per model and CPU)")
            try:
                result = run_guard(precision)
            except (GenrelensError, OSError, RuntimeError, ValueError) as e:  # e.g. the data moved away
                result = GuardResult(precision, False, 0, 0.0, 0.0, 0.0, 0.0, 0.0, reason=f"could not check: {e}")
            result.model_key, result.flags = key, prec.kind_flags(f)
            result.checked_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            if result.n_movies:
                prec.write_guard(path, result)
            elif report:
                report(result.summary())  # could not run: not saved, so the choice will not list it
        elif report:  # the result is listed with the choice; say it was not checked now
            report(f"{precision}: the check saved on this machine at {result.checked_at or 'an earlier run'} is used "
                   "(--force checks again)")
        out.append(result)
        if result.passed:
            break
    return out


def check_precisions(clf: GenreClassifier, flags: Iterable[str] | str | None = None, report: Report | None = None,
                     guard_dir: Path | None = None, force: bool = False, save: bool = True) -> Choice:
    """Run the accuracy guard for this CPU's candidates (bf16/int8 against fp32 on ``clf``'s validation split;
    minutes), unless this machine's cache holds a result (``force``: run anyway); save the results in the model
    folder (``save``; a read-only folder keeps them in the cache only) and switch ``clf`` to what "auto" then
    picks. Returns that ``Choice``."""
    key = clf.bundle.weights_key()
    results = run_checks(key, lambda p: check_precision(clf, p), flags=flags, cache_dir=guard_dir,
                         report=report, force=force, text=clf.text_encoder is not None)
    if save and any(r.n_movies for r in results):
        try:
            clf.bundle.save_precision_guard(prec.guard_content(clf.bundle.precision_guard, key, results))
        except OSError as e:
            if report:
                report(f"could not save the guard results into {clf.model_dir} ({e}): kept in the cache")
    return clf.use_precision("auto", flags=flags, guard_dir=guard_dir)
