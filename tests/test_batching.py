"""genrelens.serve.batching: concurrent requests share model calls; results go back to their request."""

import asyncio
import threading

import pytest

from genrelens.serve.batching import MicroBatcher


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_submits_are_grouped_and_answered_in_order():
    calls: list[list[int]] = []
    release = threading.Event()

    def score(items):
        calls.append(list(items))
        release.wait(5)  # hold the first batch so the others queue up behind it
        return [x * 10 for x in items]

    async def main():
        b = MicroBatcher(score, max_batch=32, max_wait_ms=50)
        first = asyncio.create_task(b.submit([0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(b.submit([i, i + 100])) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        release.set()
        out = await asyncio.gather(first, *rest)
        await b.close()
        return out, b.stats

    out, stats = _run(main())
    assert out == [[0]] + [[i * 10, (i + 100) * 10] for i in range(1, 6)]
    assert len(calls) < 6  # the five waiting requests shared model calls
    assert stats.movies == 11 and stats.requests == 6 and stats.batches == len(calls)
    assert stats.as_dict()["largest_batch"] == max(map(len, calls))


def test_max_batch_caps_a_call_and_empty_requests_skip_the_model():
    sizes = []

    def score(items):
        sizes.append(len(items))
        return items

    async def main():
        b = MicroBatcher(score, max_batch=2, max_wait_ms=20)
        out = await asyncio.gather(*(b.submit([i]) for i in range(5)), b.submit([]))
        await b.close()
        return out

    assert _run(main()) == [[0], [1], [2], [3], [4], []]
    assert max(sizes) <= 2 and sum(sizes) == 5


def test_a_model_error_reaches_every_request_of_its_batch():
    def score(items):
        raise RuntimeError("model failed")

    async def main():
        b = MicroBatcher(score, max_wait_ms=20)
        out = await asyncio.gather(b.submit([1]), b.submit([2]), return_exceptions=True)
        await b.close()
        return out

    assert [str(e) for e in _run(main())] == ["model failed", "model failed"]
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda x: x, max_batch=0)
