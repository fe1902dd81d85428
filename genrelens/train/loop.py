"""The training loop, separate from the models and from side effects: AdamW with warm-up and linear decay,
validation weighted F1 each epoch. Checkpoints (resume), history CSV/PNG, the progress bar and early stopping
are callbacks. Deterministic for a seed: each epoch reseeds torch.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from scipy.special import expit
from sklearn.metrics import f1_score
from torch import nn

from genrelens.bundle import HISTORY
from genrelens.io import atomic_path
from genrelens.models.checkpoint import load_tensors, save_tensors
from genrelens.models.thresholds import decide, tune_thresholds
from genrelens.progress import progress_console
from genrelens.train import distributed
from genrelens.train.checkpoint import load_training_state, save_training_state
from genrelens.train.config import LoopConfig

Batch = tuple[dict[str, torch.Tensor], torch.Tensor]


@dataclass
class FitState:
    """What callbacks see: the model, its optimizer and schedule, and the loop's progress."""

    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    schedule: Callable[[int], float]
    cfg: LoopConfig
    n_batches: int
    epoch: int = 0  # the last completed epoch
    best_f1: float = -1.0
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    stop: bool = False

    def meta(self) -> dict:
        return {"epoch": self.epoch, "best_f1": self.best_f1, "best_epoch": self.best_epoch, "history": self.history}


class Callback:
    """Hooks of ``fit``; each does one side effect."""

    def on_fit_start(self, state: FitState) -> None: ...

    def on_batch_end(self, state: FitState) -> None: ...

    def on_epoch_end(self, state: FitState, row: dict, improved: bool) -> None: ...

    def on_fit_end(self, state: FitState) -> None: ...


class EarlyStopping(Callback):
    """Stop once ``patience`` epochs passed without a better validation F1."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_fit_start(self, state: FitState) -> None:  # a resumed run may have stopped already
        self.on_epoch_end(state, {}, False)

    def on_epoch_end(self, state: FitState, row: dict, improved: bool) -> None:
        if state.best_epoch > 0 and state.epoch + 1 - state.best_epoch > self.patience:
            state.stop = True


class Checkpoint(Callback):
    """``best.safetensors`` at each better epoch, the resumable state after every epoch (rank 0 only); with
    ``resume``, continue from that state; at the end, the model goes back to its best epoch."""

    def __init__(self, folder: Path, resume: bool = False) -> None:
        self.folder, self.resume = folder, resume

    def on_fit_start(self, state: FitState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.resume:
            return
        ddp = distributed.current()
        loaded = load_training_state(self.folder, state.model, state.opt) if distributed.is_main() else None
        if ddp is not None:  # rank 0's epoch, history and optimizer state; weights follow in ddp.wrap
            loaded, opt_state = ddp.broadcast((loaded, state.opt.state_dict() if loaded is not None else None))
            if loaded is not None and not ddp.is_main:
                state.opt.load_state_dict(opt_state)
        if loaded is not None:
            state.epoch, state.best_f1 = loaded["epoch"], loaded["best_f1"]
            state.best_epoch, state.history = loaded["best_epoch"], loaded["history"]
            state.sched.last_epoch = state.epoch * state.n_batches  # the step reached; set its lr as step() would
            for group, base in zip(state.opt.param_groups, state.sched.base_lrs):
                group["lr"] = base * state.schedule(state.sched.last_epoch)

    def on_epoch_end(self, state: FitState, row: dict, improved: bool) -> None:
        if not distributed.is_main():
            return
        if improved:
            save_tensors(self.folder / "best.safetensors", state.model.state_dict())
        save_training_state(self.folder, state.model, state.opt, state.meta())

    def on_fit_end(self, state: FitState) -> None:
        if distributed.is_main() and (self.folder / "best.safetensors").exists():
            state.model.load_state_dict(load_tensors(self.folder / "best.safetensors"))


class History(Callback):
    """``history.csv`` in ``folder`` after every epoch and ``curves.png`` when fitting ends, stopped or not
    (rank 0 only): drawing is the slow part, so it is done once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_epoch_end(self, state: FitState, row: dict, improved: bool) -> None:
        if distributed.is_main():
            write_history(state.history, self.folder)

    def on_fit_end(self, state: FitState) -> None:
        if distributed.is_main() and state.history:
            plot_curves(state.history, self.folder / "curves.png")


class ProgressBar(Callback):
    """A rich progress bar over every batch of every epoch, with the latest validation F1; on a pipe or a log file
    (where a bar shows nothing until it ends) one line per epoch instead."""

    def __init__(self, desc: str, enabled: bool = True) -> None:
        self.desc, self.enabled = desc, enabled

    def on_fit_start(self, state: FitState) -> None:
        console = progress_console()
        self.lines = self.enabled and not console.is_terminal and distributed.is_main()
        self.console, self.started = console, time.monotonic()
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TimeElapsedColumn(), TimeRemainingColumn(), disable=not self.enabled or self.lines,
                            transient=False, console=console)
        self.bar.start()
        self.task = self.bar.add_task(self.desc, total=state.cfg.epochs * state.n_batches,
                                      completed=state.epoch * state.n_batches)
        if self.lines:
            again = f", resuming after epoch {state.epoch}" if state.epoch else ""
            self.console.print(f"{self.desc}: up to {state.cfg.epochs} epochs of {state.n_batches} batches{again}",
                               highlight=False, markup=False)

    def on_batch_end(self, state: FitState) -> None:
        self.bar.advance(self.task)

    def on_epoch_end(self, state: FitState, row: dict, improved: bool) -> None:
        self.bar.update(self.task, description=f"{self.desc} epoch {row['epoch']} val F1 {row['val_weighted_f1']:.3f}")
        if self.lines:
            best = " (best so far)" if improved else ""
            self.console.print(f"{self.desc} epoch {row['epoch']}/{state.cfg.epochs}: validation weighted F1 "
                               f"{row['val_weighted_f1']:.3f}{best}, {time.monotonic() - self.started:.0f} s",
                               highlight=False, markup=False)

    def on_fit_end(self, state: FitState) -> None:
        self.bar.stop()


def weighted_f1(y: np.ndarray, proba: np.ndarray, tuned: bool) -> float:
    """Validation score for early stopping: weighted F1 at tuned (or 0.5) thresholds."""
    thr = tune_thresholds(y, proba) if tuned else 0.5
    return float(f1_score(y > 0, decide(proba, thr), average="weighted", zero_division=0))


def fit(
    model: nn.Module,
    train_batches: Callable[[int], Iterable[Batch]],
    n_batches: int,
    predict_val: Callable[[nn.Module], np.ndarray],
    y_val: np.ndarray,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    cfg: LoopConfig,
    folder: Path,
    resume: bool = False,
    progress: bool = True,
    desc: str = "train",
    callbacks: list[Callback] | None = None,
) -> list[dict]:
    """Train ``model`` in place and leave it at its best validation epoch; returns the per-epoch history.

    ``train_batches(epoch)`` yields (inputs, multi-hot targets); ``predict_val(model)`` returns validation
    logits ``[n_val, n_labels]`` aligned with ``y_val``. Checkpoints and history go to ``folder`` (the default
    callbacks); ``callbacks`` run after them.

    In a process group (see ``distributed``) every rank calls ``fit`` with the same batches: each trains on
    its shard of every batch, rank 0 validates and writes, and its decisions are broadcast.
    """
    ddp = distributed.current()
    if ddp is not None:
        model.to(ddp.device)  # before the optimizer, so a resumed optimizer state lands on the same device
    params = [p for p in model.parameters() if p.requires_grad]
    # a model may ask for its own parameter groups (e.g. a smaller lr for pretrained layers)
    groups = model.param_groups(cfg.lr) if hasattr(model, "param_groups") else [{"params": params}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(cfg.epochs * n_batches, 1)
    warm = int(cfg.warmup_ratio * total)

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to 0
        return min((step + 1) / max(warm, 1), max(0.0, (total - step) / max(total - warm, 1)))

    state = FitState(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule), schedule, cfg, n_batches)
    hooks = [Checkpoint(folder, resume), History(folder), EarlyStopping(cfg.patience), ProgressBar(desc, progress),
             *(callbacks or [])]
    for h in hooks:
        h.on_fit_start(state)
    y_val_t = torch.as_tensor(y_val)
    net = model if ddp is None else ddp.wrap(model)
    try:
        for epoch in range(state.epoch + 1, cfg.epochs + 1):
            if state.stop:
                break
            row = _epoch(state, net, epoch, train_batches, predict_val, y_val, y_val_t, loss_fn, params, hooks)
            if ddp is not None:
                row = ddp.broadcast(row)
            state.history.append(row)
            improved = row["val_weighted_f1"] > state.best_f1
            if improved:
                state.best_f1, state.best_epoch = row["val_weighted_f1"], epoch
            state.epoch = epoch
            for h in hooks:
                h.on_epoch_end(state, row, improved)
    finally:
        for h in hooks:
            h.on_fit_end(state)
    if ddp is not None:  # every rank leaves with rank 0's best weights, on the CPU
        ddp.broadcast_module(model)
        model.cpu()
    model.eval()
    return state.history


def _epoch(state: FitState, net: nn.Module, epoch: int, train_batches, predict_val, y_val, y_val_t, loss_fn,
           params, hooks) -> dict | None:
    """One epoch of training, then validation on rank 0: its row of the history (None on other ranks)."""
    ddp = distributed.current()
    model, opt, sched = state.model, state.opt, state.sched
    t0 = time.time()
    torch.manual_seed(state.cfg.seed * 100_003 + epoch + (ddp.seed_offset() if ddp else 0))
    model.train()
    losses, probs, ys = [], [], []
    for inputs, y in train_batches(epoch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=state.cfg.bf16):
            logits = net(inputs) if ddp is None else ddp.forward_global(net, inputs)
        logits = logits.float()
        loss = loss_fn(logits, y.to(logits.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        probs.append(torch.sigmoid(logits.detach()).cpu().numpy())
        ys.append(y.numpy())
        for h in hooks:
            h.on_batch_end(state)
    model.eval()
    if not distributed.is_main():
        return None
    with torch.inference_mode():
        val_logits = predict_val(model if ddp is None else ddp.eval_model(model))
        val_loss = float(loss_fn(torch.as_tensor(val_logits), y_val_t))
    val_proba = expit(val_logits)  # stable: large logits (double soft F1 pushes them apart) do not overflow
    return {
        "epoch": epoch,
        "train_loss": float(np.mean(losses)),
        "val_loss": val_loss,
        "train_weighted_f1": float(f1_score(np.vstack(ys) > 0, np.vstack(probs) >= 0.5,
                                            average="weighted", zero_division=0)),
        "val_weighted_f1": weighted_f1(y_val, val_proba, state.cfg.tuned_thresholds),
        "lr": sched.get_last_lr()[0],
        "seconds": round(time.time() - t0, 2),
    }


def write_history(history: list[dict], folder: Path) -> None:
    """``history.csv``: loss and weighted F1 per epoch, train and validation."""
    if not history:
        return
    with atomic_path(folder / HISTORY) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)


def plot_curves(history: list[dict], path: Path, title: str = "") -> None:
    """``path`` (PNG): loss and weighted F1 per epoch, train and validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(ep, [h["val_loss"] for h in history], "o-", label="validation")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    b.plot(ep, [h["train_weighted_f1"] for h in history], "o-", label="train (0.5)")
    b.plot(ep, [h["val_weighted_f1"] for h in history], "o-", label="validation")
    b.set(xlabel="epoch", ylabel="weighted F1", title="weighted F1")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
