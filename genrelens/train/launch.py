"""Start distributed training: ``genrelens train --nproc N`` runs torchrun, which starts N workers of
``python -m genrelens.train.launch <config.json>``; each joins the process group and runs the ordinary
training (outputs from rank 0 only). See ``distributed.py`` for how N processes train one model.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from genrelens.config import RunConfig
from genrelens.train import distributed


def launch_command(config_path: Path, nproc: int, nnodes: int = 1, node_rank: int = 0,
                   master_addr: str = "127.0.0.1", master_port: int = 29500, resume: bool = False,
                   progress: bool = True) -> list[str]:
    """The torchrun command that starts this node's ``nproc`` workers for the run in ``config_path``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes == 1:
        cmd.append("--standalone")  # a free local port; no rendezvous to configure
    else:
        cmd += [f"--node-rank={node_rank}", f"--master-addr={master_addr}", f"--master-port={master_port}"]
    cmd += ["-m", "genrelens.train.launch", str(config_path)]
    return cmd + (["--resume"] if resume else []) + ([] if progress else ["--no-progress"])


def launch(cfg: RunConfig, nproc: int, nnodes: int = 1, node_rank: int = 0, master_addr: str = "127.0.0.1",
           master_port: int = 29500, resume: bool = False, progress: bool = True) -> int:
    """Train ``cfg`` with ``nproc`` processes on this node (of ``nnodes``); returns torchrun's exit code."""
    from genrelens.train.run import resolve_precision

    with tempfile.TemporaryDirectory(prefix="genrelens-ddp-") as tmp:
        path = Path(tmp) / "config.json"
        resolve_precision(cfg).save(path)  # every rank of this node trains in the precision resolved here
        cmd = launch_command(path, nproc, nnodes, node_rank, master_addr, master_port, resume, progress)
        return subprocess.run(cmd, check=False).returncode


def worker_main(argv: list[str] | None = None) -> int:
    """One torchrun worker: join the group and run the ordinary training (outputs from rank 0 only)."""
    from rich.console import Console

    from genrelens.errors import GenrelensError
    from genrelens.train.run import train

    p = argparse.ArgumentParser(prog="genrelens.train.launch")
    p.add_argument("config", type=Path)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    cfg = RunConfig.load(args.config)
    ctx = distributed.init()
    console = Console(stderr=True, quiet=not ctx.is_main, soft_wrap=True)  # paths stay whole (cli/common.py)
    try:
        with tempfile.TemporaryDirectory(prefix=f"genrelens-rank{ctx.rank}-") as scratch:
            if not ctx.is_main:
                cfg.out = scratch  # split, metrics, ... of the other ranks: thrown away
            if ctx.is_main:
                console.print(f"distributed training: {ctx.world} processes, backend {ctx.backend}")
            train(cfg, resume=args.resume, progress=ctx.is_main and not args.no_progress, console=console)
            distributed.dist.barrier()
    except GenrelensError as e:
        Console(stderr=True).print(f"[red]error (rank {ctx.rank}):[/] {e}")
        return 1
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":  # torchrun -m genrelens.train.launch: use the package module, not __main__
    import importlib

    raise SystemExit(importlib.import_module("genrelens.train.launch").worker_main())
