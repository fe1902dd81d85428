"""The training loop, separate from the models: AdamW with warm-up, early stopping on validation weighted F1,
per-epoch history (CSV + PNG), resumable checkpoints. Deterministic for a seed: each epoch reseeds torch.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sklearn.metrics import f1_score
from torch import nn

from genrelens.io import atomic_path
from genrelens.train import distributed
from genrelens.train.checkpoint import load_tensors, load_training_state, save_tensors, save_training_state
from genrelens.train.thresholds import decide, tune_thresholds

Batch = tuple[dict[str, torch.Tensor], torch.Tensor]


@dataclass
class LoopConfig:
    epochs: int
    lr: float
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    patience: int = 5
    seed: int = 0
    tuned_thresholds: bool = True
    bf16: bool = False  # forward passes under torch.autocast("cpu", torch.bfloat16); loss and weights in fp32


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
) -> list[dict]:
    """Train ``model`` in place and leave it at its best validation epoch; returns the per-epoch history.

    ``train_batches(epoch)`` yields (inputs, multi-hot targets); ``predict_val(model)`` returns validation
    logits ``[n_val, n_labels]`` aligned with ``y_val``. Checkpoints and history go to ``folder``.

    In a process group (see ``distributed``) every rank calls ``fit`` with the same batches: each trains on
    its shard of every batch, rank 0 validates and writes, and its decisions are broadcast.
    """
    ddp = distributed.current()
    main = distributed.is_main()
    if ddp is not None:
        model.to(ddp.device)  # before the optimizer, so a resumed optimizer state lands on the same device
    folder.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    # a model may ask for its own parameter groups (e.g. a smaller lr for pretrained layers)
    groups = model.param_groups(cfg.lr) if hasattr(model, "param_groups") else [{"params": params}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = max(cfg.epochs * n_batches, 1)
    warm = int(cfg.warmup_ratio * total)
    def schedule(step: int) -> float:  # linear warm-up, then linear decay to 0
        return min((step + 1) / max(warm, 1), max(0.0, (total - step) / max(total - warm, 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    state = {"epoch": 0, "best_f1": -1.0, "best_epoch": 0, "history": []}
    if resume:
        loaded = load_training_state(folder, model, opt) if main else None
        if ddp is not None:  # rank 0's epoch, history and optimizer state; weights follow in ddp.wrap
            loaded, opt_state = ddp.broadcast((loaded, opt.state_dict() if loaded is not None else None))
            if loaded is not None and not main:
                opt.load_state_dict(opt_state)
        if loaded is not None:
            state = loaded
            sched.last_epoch = state["epoch"] * n_batches  # the step reached; set its lr as step() would
            for group, base in zip(opt.param_groups, sched.base_lrs):
                group["lr"] = base * schedule(sched.last_epoch)
    y_val_t = torch.as_tensor(y_val)
    net = model if ddp is None else ddp.wrap(model)
    with _progress(progress) as bar:
        task = bar.add_task(desc, total=cfg.epochs * n_batches, completed=state["epoch"] * n_batches)
        for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
            if epoch - state["best_epoch"] > cfg.patience and state["best_epoch"] > 0:
                break
            t0 = time.time()
            torch.manual_seed(cfg.seed * 100_003 + epoch + (ddp.seed_offset() if ddp else 0))
            model.train()
            losses, probs, ys = [], [], []
            for inputs, y in train_batches(epoch):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
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
                bar.advance(task)
            model.eval()
            row = None
            if main:  # validation on rank 0; its row (so every decision) is broadcast
                with torch.inference_mode():
                    val_logits = predict_val(model if ddp is None else ddp.eval_model(model))
                    val_loss = float(loss_fn(torch.as_tensor(val_logits), y_val_t))
                val_proba = 1 / (1 + np.exp(-val_logits))
                row = {
                    "epoch": epoch,
                    "train_loss": float(np.mean(losses)),
                    "val_loss": val_loss,
                    "train_weighted_f1": float(f1_score(np.vstack(ys) > 0, np.vstack(probs) >= 0.5,
                                                        average="weighted", zero_division=0)),
                    "val_weighted_f1": weighted_f1(y_val, val_proba, cfg.tuned_thresholds),
                    "lr": sched.get_last_lr()[0],
                    "seconds": round(time.time() - t0, 2),
                }
            if ddp is not None:
                row = ddp.broadcast(row)
            state["history"].append(row)
            bar.update(task, description=f"{desc} epoch {epoch} val F1 {row['val_weighted_f1']:.3f}")
            if row["val_weighted_f1"] > state["best_f1"]:
                state.update(best_f1=row["val_weighted_f1"], best_epoch=epoch)
                if main:
                    save_tensors(folder / "best.safetensors", model.state_dict())
            state["epoch"] = epoch
            if main:  # checkpoints: rank 0 only
                save_training_state(folder, model, opt, state)
                write_history(state["history"], folder)
    if main and (folder / "best.safetensors").exists():
        model.load_state_dict(load_tensors(folder / "best.safetensors"))
    if ddp is not None:  # every rank leaves with rank 0's best weights, on the CPU
        ddp.broadcast_module(model)
        model.cpu()
    model.eval()
    return state["history"]


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled, transient=False)


def write_history(history: list[dict], folder: Path) -> None:
    """``history.csv`` and ``curves.png`` (loss and weighted F1 per epoch, train and validation)."""
    if not history:
        return
    with atomic_path(folder / "history.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    plot_curves(history, folder / "curves.png")


def plot_curves(history: list[dict], path: Path, title: str = "") -> None:
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
