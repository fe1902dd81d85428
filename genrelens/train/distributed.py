"""Distributed data-parallel training: ``genrelens train --nproc N [--nnodes M]`` relaunches itself with
torchrun (see ``launch.py``); each process runs the ordinary :func:`genrelens.train.run.train`, and
:func:`loop.fit` asks :func:`current` whether it runs in a process group.

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

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

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


def current() -> DistContext | None:
    """This process's place in the process group, or None in an ordinary single process (read from
    torch.distributed each time: no module state)."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    backend = dist.get_backend()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, backend, device)


def is_main() -> bool:
    """True on rank 0 and in a single process: the process that writes outputs."""
    ctx = current()
    return ctx is None or ctx.is_main


@contextmanager
def local_zero_first() -> Iterator[None]:
    """Run the block on each node's local rank 0 first (it fills the feature cache), then on the others."""
    ctx = current()
    if ctx is not None and ctx.local_rank != 0:
        dist.barrier()
    yield
    if ctx is not None and ctx.local_rank == 0:
        dist.barrier()


def init() -> DistContext:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, ...)."""
    cuda = torch.cuda.is_available()
    backend = os.environ.get(BACKEND_ENV) or ("nccl" if cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if backend == "nccl":
        torch.cuda.set_device(torch.device("cuda", local_rank))
    dist.init_process_group(backend=backend)
    return current()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
