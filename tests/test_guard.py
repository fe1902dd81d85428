"""genrelens.guard: the accuracy rule for a reduced precision, and running the checks once per model and CPU."""

import numpy as np
import pytest

from genrelens.encoders.precision import GuardResult
from genrelens.guard import MIN_IDENTICAL, judge, run_checks

Y = np.array([[1, 0], [0, 1], [1, 1], [1, 0]] * 25)


def test_identical_predictions_pass():
    passed, f1_32, f1, identical, reason = judge(Y, Y, Y)
    assert passed and f1_32 == f1 == 1.0 and identical == 1.0 and reason == ""


def test_a_few_changed_movies_fail_on_the_identical_share():
    pred = Y.copy()
    pred[:2] = 1 - pred[:2]  # 2 of 100 movies change: 98% < 99%
    passed, _, f1, identical, reason = judge(Y, Y, pred)
    assert not passed and identical == pytest.approx(0.98) and identical < MIN_IDENTICAL
    assert "identical genres on 98.00%" in reason and "weighted F1 drops" in reason and f1 < 1.0


def test_no_movies_fail():
    """Zero validation movies fail the guard with a reason (sklearn's f1_score raised on 0 rows before)."""
    empty = np.zeros((0, 2))
    passed, *_, reason = judge(empty, empty, empty)
    assert not passed and reason.startswith("no validation movies")


def _result(precision, passed):
    return GuardResult(precision, passed, 10, 0.5, 0.5, 1.0 if passed else 0.5, 0.0, 0.1)


def test_run_checks_stops_at_the_first_pass_and_reuses_the_cache(tmp_path):
    flags = "amx_bf16 avx512_vnni"
    ran = []

    def guard(precision):
        ran.append(precision)
        return _result(precision, passed=precision == "int8")

    first = run_checks("model-key", guard, flags=flags, cache_dir=tmp_path)
    assert [r.precision for r in first] == ["bf16", "int8"] and ran == ["bf16", "int8"]
    assert first[1].passed and first[1].model_key == "model-key"
    again = run_checks("model-key", guard, flags=flags, cache_dir=tmp_path)
    assert ran == ["bf16", "int8"] and [r.passed for r in again] == [False, True]  # from the cache
    run_checks("model-key", guard, flags=flags, cache_dir=tmp_path, force=True)
    assert ran == ["bf16", "int8"] * 2
    assert run_checks("model-key", guard, flags="avx2", cache_dir=tmp_path) == []  # no candidate: fp32 only


def test_a_guard_that_cannot_run_is_a_failure_and_not_cached(tmp_path):
    calls = []

    def broken(precision):
        calls.append(precision)
        raise OSError("the data moved away")

    out = run_checks("k", broken, flags="avx512_vnni", cache_dir=tmp_path)
    assert not out[0].passed and "could not check: the data moved away" in out[0].reason
    run_checks("k", broken, flags="avx512_vnni", cache_dir=tmp_path)
    assert calls == ["int8", "int8"]
