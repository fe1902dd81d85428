"""genrelens.train.launch: the torchrun command of a node, and the config every rank reads."""

import sys

from genrelens.config import RunConfig
from genrelens.train import launch as launch_mod
from genrelens.train.launch import launch_command


def test_single_node_command_is_standalone(tmp_path):
    cmd = launch_command(tmp_path / "c.json", nproc=2, progress=False)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in cmd and "--standalone" in cmd
    assert cmd[-4:] == ["-m", "genrelens.train.launch", str(tmp_path / "c.json"), "--no-progress"]


def test_multi_node_command_names_the_rendezvous(tmp_path):
    cmd = launch_command(tmp_path / "c.json", nproc=4, nnodes=2, node_rank=1, master_addr="10.0.0.1",
                         master_port=1234, resume=True)
    assert "--standalone" not in cmd
    assert {"--nnodes=2", "--node-rank=1", "--master-addr=10.0.0.1", "--master-port=1234"} <= set(cmd)
    assert cmd[-1] == "--resume"


def test_launch_saves_the_resolved_config_for_the_workers(monkeypatch, tmp_path):
    seen = {}

    class Done:
        returncode = 3

    def fake_run(cmd, check):
        seen["cfg"] = RunConfig.load(cmd[cmd.index("genrelens.train.launch") + 1])
        return Done()

    monkeypatch.setattr(launch_mod.subprocess, "run", fake_run)
    code = launch_mod.launch(RunConfig(model="naive", out=str(tmp_path / "out"), precision="auto"), nproc=2)
    assert code == 3
    assert seen["cfg"].model == "naive" and seen["cfg"].precision in ("fp32", "bf16")  # "auto" resolved
