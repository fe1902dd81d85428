"""genrelens.encoders.pooling: mean pooling over a token mask."""

import torch

from genrelens.encoders.pooling import WINDOW_POOLING, mean_pool


def test_mean_pool_ignores_masked_tokens():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = mean_pool(hidden, mask)
    assert torch.allclose(out, torch.tensor([[2.0, 3.0], [7.0, 8.0]]))


def test_an_all_masked_row_pools_to_zero_not_nan():
    out = mean_pool(torch.ones(1, 2, 3), torch.zeros(1, 2, dtype=torch.long))
    assert torch.equal(out, torch.zeros(1, 3))


def test_window_pooling_names():
    assert WINDOW_POOLING == ("mean", "max", "first")
