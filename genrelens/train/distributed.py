"""Distributed data-parallel training: ``genrelens train --nproc N [--nnodes M]`` relaunches itself with
torchrun; each process runs the ordinary :func:`genrelens.train.run.train`, and :func:`loop.fit` asks
:func:`current` whether it runs in a process group.

How N processes train the model one process would:

* every rank builds the same split, labels and oversampled rows (all deterministic from the config) and the
  same seeded per-epoch permutation; each global batch of ``batch_size`` rows is cut into ``world``
  contiguous, disjoint shards and rank ``r`` runs the forward pass on shard ``r`` only;
* the shards' logits are all-gathered (in rank order, i.e. the global batch's order) and the loss is taken
  over the whole global batch on every rank. The study's loss (double soft F1) is not a mean of per-movie
  terms, so averaging per-shard losses would train a different model; with the gathered loss the gradient
  that DDP averages is exactly the one-process gradient (see :class:`_GatherRows`);
* validation runs on rank 0; its row of metrics (and so every early-stopping decision) is broadcast;
* checkpoints and run outputs are written by rank 0 only; the other ranks write to a scratch folder;
* features: local rank 0 fills the feature cache first (barrier), then the other ranks read it.

Dropout masks are drawn per rank (rank 0 with the one-process seed), so with dropout > 0 results match one
process statistically, not bit for bit; with dropout 0 they match to float rounding (see docs/scaling.md).
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from genrelens.train.config import RunConfig

BACKEND_ENV = "GENRELENS_DIST_BACKEND"  # override the backend: gloo (CPU) or nccl (GPU)


@dataclass
class DistContext:
    """This process's place in the process group."""

    rank: int
    world: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def bounds(self, n: int) -> list[tuple[int, int]]:
        """Contiguous shards of ``n`` rows, one per rank, sizes differing by at most 1."""
        base, extra = divmod(n, self.world)
        out, lo = [], 0
        for r in range(self.world):
            hi = lo + base + (r < extra)
            out.append((lo, hi))
            lo = hi
        return out

    def forward_global(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Run ``net`` on this rank's shard of the global batch ``inputs``; returns the global batch's logits
        (all shards, in order), differentiable with respect to this rank's shard."""
        n = len(next(iter(inputs.values())))
        spans = self.bounds(n)
        lo, hi = spans[self.rank]
        if hi > lo:
            local = net({k: v[lo:hi].to(self.device) for k, v in inputs.items()})
        else:  # a batch smaller than the world: one row through the model keeps every parameter in the graph
            local = net({k: v[:1].to(self.device) for k, v in inputs.items()})[:0]
        return _GatherRows.apply(local, [b - a for a, b in spans], self.rank, self.world)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_module(self, model: nn.Module) -> None:
        """Copy rank 0's parameters and buffers into ``model`` on every rank."""
        with torch.no_grad():
            for t in model.state_dict().values():
                dist.broadcast(t, src=0)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` on this rank's device inside DistributedDataParallel (which syncs rank 0's weights)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        model.to(self.device)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids)

    def eval_model(self, model: nn.Module) -> nn.Module:
        """The model to validate with: itself on CPU, a CPU copy when training runs on a GPU."""
        return model if self.device.type == "cpu" else copy.deepcopy(model).cpu()

    def seed_offset(self) -> int:
        """Added to the per-epoch torch seed: different dropout masks per rank, rank 0 as one process."""
        return 1_000_003 * self.rank


class _GatherRows(torch.autograd.Function):
    """All-gather row shards of unequal sizes (padded to the largest) into one tensor, in rank order.

    Every rank then computes the same loss on the same gathered tensor, so each holds the full gradient;
    backward keeps this rank's rows, times ``world`` because DDP divides the summed gradients by ``world``.
    """

    @staticmethod
    def forward(ctx, local: torch.Tensor, sizes: list[int], rank: int, world: int) -> torch.Tensor:
        ctx.span = (sum(sizes[:rank]), sum(sizes[: rank + 1]))
        ctx.world = world
        width = max(sizes)
        padded = local.new_zeros((width, *local.shape[1:]))
        padded[: len(local)] = local
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        lo, hi = ctx.span
        return grad[lo:hi] * ctx.world, None, None, None


_CTX: DistContext | None = None


def current() -> DistContext | None:
    """The process group context, or None in an ordinary single process."""
    return _CTX


def is_main() -> bool:
    """True on rank 0 and in a single process: the process that writes outputs."""
    return _CTX is None or _CTX.is_main


@contextmanager
def local_zero_first() -> Iterator[None]:
    """Run the block on each node's local rank 0 first (it fills the feature cache), then on the others."""
    ctx = _CTX
    if ctx is not None and ctx.local_rank != 0:
        dist.barrier()
    yield
    if ctx is not None and ctx.local_rank == 0:
        dist.barrier()


def init() -> DistContext:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, ...)."""
    global _CTX
    cuda = torch.cuda.is_available()
    backend = os.environ.get(BACKEND_ENV) or ("nccl" if cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    _CTX = DistContext(dist.get_rank(), dist.get_world_size(), local_rank, backend, device)
    return _CTX


def shutdown() -> None:
    global _CTX
    if dist.is_initialized():
        dist.destroy_process_group()
    _CTX = None


def launch_command(config_path: Path, nproc: int, nnodes: int = 1, node_rank: int = 0,
                   master_addr: str = "127.0.0.1", master_port: int = 29500, resume: bool = False,
                   progress: bool = True) -> list[str]:
    """The torchrun command that starts this node's ``nproc`` workers for the run in ``config_path``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes == 1:
        cmd.append("--standalone")  # a free local port; no rendezvous to configure
    else:
        cmd += [f"--node-rank={node_rank}", f"--master-addr={master_addr}", f"--master-port={master_port}"]
    cmd += ["-m", "genrelens.train.distributed", str(config_path)]
    return cmd + (["--resume"] if resume else []) + ([] if progress else ["--no-progress"])


def launch(cfg: RunConfig, nproc: int, nnodes: int = 1, node_rank: int = 0, master_addr: str = "127.0.0.1",
           master_port: int = 29500, resume: bool = False, progress: bool = True) -> int:
    """Train ``cfg`` with ``nproc`` processes on this node (of ``nnodes``); returns torchrun's exit code."""
    with tempfile.TemporaryDirectory(prefix="genrelens-ddp-") as tmp:
        path = Path(tmp) / "config.json"
        cfg.save(path)
        cmd = launch_command(path, nproc, nnodes, node_rank, master_addr, master_port, resume, progress)
        return subprocess.run(cmd, check=False).returncode


def worker_main(argv: list[str] | None = None) -> int:
    """One torchrun worker: join the group and run the ordinary training (outputs from rank 0 only)."""
    from rich.console import Console

    from genrelens.errors import GenrelensError
    from genrelens.train.run import train

    p = argparse.ArgumentParser(prog="genrelens.train.distributed")
    p.add_argument("config", type=Path)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    cfg = RunConfig.load(args.config)
    ctx = init()
    console = Console(stderr=True, quiet=not ctx.is_main)
    try:
        with tempfile.TemporaryDirectory(prefix=f"genrelens-rank{ctx.rank}-") as scratch:
            if not ctx.is_main:
                cfg.out = scratch  # split, metrics, ... of the other ranks: thrown away
            if ctx.is_main:
                console.print(f"distributed training: {ctx.world} processes, backend {ctx.backend}")
            train(cfg, resume=args.resume, progress=ctx.is_main and not args.no_progress, console=console)
            dist.barrier()
    except GenrelensError as e:
        Console(stderr=True).print(f"[red]error (rank {ctx.rank}):[/] {e}")
        return 1
    finally:
        shutdown()
    return 0


if __name__ == "__main__":  # torchrun -m genrelens.train.distributed: use the package module, not __main__
    from genrelens.train.distributed import worker_main as _worker_main

    raise SystemExit(_worker_main())
