"""genrelens.train.config: a run's RunConfig becomes the head's and the text stage's loop settings."""

from genrelens.config import RunConfig
from genrelens.train.config import loop_config


def test_head_and_fine_tune_loops_read_their_own_fields():
    cfg = RunConfig(epochs=7, lr=0.002, patience=3, ft_epochs=2, ft_lr=1e-5, ft_patience=0, seed=4,
                    warmup_ratio=0.2, thresholds="fixed", precision="bf16")
    head, ft = loop_config(cfg), loop_config(cfg, fine_tune=True)
    assert (head.epochs, head.lr, head.patience, head.warmup_ratio, head.seed) == (7, 0.002, 3, 0.2, 4)
    assert (ft.epochs, ft.lr, ft.patience, ft.warmup_ratio, ft.seed) == (2, 1e-5, 0, 0.1, 4)
    assert not head.tuned_thresholds and head.bf16 and ft.bf16


def test_fp32_and_tuned_by_default():
    loop = loop_config(RunConfig(precision="fp32"))
    assert loop.tuned_thresholds and not loop.bf16
