"""nicbook.nn.training: the training loop, resuming, fine-tuning and distributed training on CPU."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from nicbook.errors import NicbookError
from nicbook.nn.checkpoints import CHECKPOINT_NAME, LOG_NAME, load_checkpoint, save_snapshot
from nicbook.nn.models import Autoencoder, FactorizedPrior
from nicbook.nn.training import evaluate_patches, fit


def test_a_few_steps_reduce_the_loss(photos, tiny_config, tmp_path):
    config = tiny_config(tmp_path, 25, lr=1e-2)
    torch.manual_seed(config.seed)
    initial = FactorizedPrior(config.N, config.M)
    model = fit(config, photos, progress=False)
    patches = torch.rand(2, 3, 32, 32) * 0.5 + 0.25
    before = evaluate_patches(initial, patches, config.lmbda)["loss"]
    after = evaluate_patches(model, patches, config.lmbda)["loss"]
    assert after < 0.7 * before
    log = (tmp_path / LOG_NAME).read_text().splitlines()
    assert len([line for line in log if '"split": "train"' in line]) == 25
    assert any('"split": "validation"' in line for line in log)


def test_the_plain_autoencoder_trains_for_distortion_alone(photos, tiny_config, tmp_path):
    config = tiny_config(tmp_path, 25, architecture="autoencoder", lmbda=1 / 255**2, lr=1e-2)
    torch.manual_seed(config.seed)
    initial = Autoencoder(config.N, config.M)
    model = fit(config, photos, progress=False)
    assert type(model) is Autoencoder
    patches = torch.rand(2, 3, 32, 32) * 0.5 + 0.25
    before = evaluate_patches(initial, patches, config.lmbda)
    after = evaluate_patches(model, patches, config.lmbda)
    assert after["bpp"] == 0 and after["mse"] < 0.7 * before["mse"]
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["model_config"]["architecture"] == "autoencoder"
    with pytest.raises(NicbookError, match="unknown architecture"):
        fit(tiny_config(tmp_path / "other", 1, architecture="no-such-architecture"), photos, progress=False)


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(photos, tiny_config, tmp_path):
    straight = fit(tiny_config(tmp_path / "straight", 6, quantization="mixed"), photos, progress=False)
    fit(tiny_config(tmp_path / "resumed", 3, quantization="mixed"), photos, progress=False)
    state = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_NAME)
    assert state["step"] == 3 and state["optimizer"]["state"]
    resumed = fit(tiny_config(tmp_path / "resumed", 6, quantization="mixed"), photos, progress=False)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_resumed_run_logs_each_step_once(photos, tiny_config, tmp_path):
    run = tmp_path / "run"
    fit(tiny_config(run, 2), photos, progress=False)
    checkpoint_at_step_2 = (run / CHECKPOINT_NAME).read_bytes()
    fit(tiny_config(run, 3), photos, progress=False)
    (run / CHECKPOINT_NAME).write_bytes(checkpoint_at_step_2)  # interrupted before step 3's checkpoint
    fit(tiny_config(run, 4), photos, progress=False)
    records = [json.loads(line) for line in (run / LOG_NAME).read_text().splitlines()]
    assert [record["step"] for record in records if record["split"] == "train"] == [1, 2, 3, 4]
    assert [record["step"] for record in records if record["split"] == "validation"] == [2, 4]


def test_a_run_resumes_from_its_snapshot(photos, tiny_config, tmp_path):
    fit(tiny_config(tmp_path / "run", 3), photos, progress=False)
    save_snapshot(tmp_path / "run", tmp_path / "kept")
    resumed = fit(tiny_config(tmp_path / "kept", 5), photos, progress=False)
    assert isinstance(resumed, FactorizedPrior)
    assert load_checkpoint(tmp_path / "kept" / CHECKPOINT_NAME)["step"] == 5
    records = [json.loads(line) for line in (tmp_path / "kept" / LOG_NAME).read_text().splitlines()]
    assert [record["step"] for record in records if record["split"] == "train"] == [1, 2, 3, 4, 5]


def test_fine_tuning_starts_from_the_weights_of_another_run(photos, tiny_config, tmp_path):
    base = fit(tiny_config(tmp_path / "base", 3), photos, progress=False)
    frozen = fit(
        tiny_config(tmp_path / "tuned", 1, lr=0.0, init_from=str(tmp_path / "base" / CHECKPOINT_NAME)),
        photos,
        progress=False,
    )
    for (name, a), (_, b) in zip(base.state_dict().items(), frozen.state_dict().items()):
        assert torch.equal(a, b), name
    assert load_checkpoint(tmp_path / "tuned" / CHECKPOINT_NAME)["step"] == 1
    with pytest.raises(NicbookError, match="M=16 factorized: pass --N and --M"):
        fit(tiny_config(tmp_path / "other", 1, M=16, init_from=str(tmp_path / "base" / CHECKPOINT_NAME)),
            photos, progress=False)


def test_learning_rate_drops_tenfold_at_the_given_step(photos, tiny_config, tmp_path):
    fit(tiny_config(tmp_path / "kept", 2, lr=1e-3, lr_drop_at=3), photos, progress=False)
    assert load_checkpoint(tmp_path / "kept" / CHECKPOINT_NAME)["optimizer"]["param_groups"][0]["lr"] == 1e-3
    fit(tiny_config(tmp_path / "kept", 4, lr=1e-3, lr_drop_at=3), photos, progress=False)
    assert load_checkpoint(tmp_path / "kept" / CHECKPOINT_NAME)["optimizer"]["param_groups"][0]["lr"] == 1e-4


def test_frozen_transforms_stay_while_the_hyper_path_learns_then_train_too(photos, tiny_config, tmp_path):
    def weights(run: str) -> dict[str, torch.Tensor]:
        return load_checkpoint(tmp_path / run / CHECKPOINT_NAME)["model"]

    fit(tiny_config(tmp_path / "base", 1), photos, progress=False)
    options = {"architecture": "mean-scale", "patch_size": 64,
               "transforms_from": str(tmp_path / "base" / CHECKPOINT_NAME)}  # fmt: skip
    fit(tiny_config(tmp_path / "start", 1, lr=0.0, **options), photos, progress=False)  # the initial weights
    hyper = tiny_config(tmp_path / "hyper", 2, freeze_transforms_until=2, **options)
    trained = fit(hyper, photos, progress=False)
    before, after = weights("start"), weights("hyper")
    moved = {name for name in after if not torch.equal(after[name], before[name])}
    assert moved and all(name.startswith(("hyper_", "conditional")) for name in moved), sorted(moved)
    assert all(parameter.requires_grad for parameter in trained.parameters())
    hyper.steps = 3  # resumed: the third step trains everything
    fit(hyper, photos, progress=False)
    assert not torch.equal(weights("hyper")["analysis.0.weight"], before["analysis.0.weight"])


def test_resume_refuses_a_checkpoint_of_another_size(photos, tiny_config, tmp_path):
    fit(tiny_config(tmp_path, 1), photos, progress=False)
    with pytest.raises(NicbookError, match="N=8, M=12"):
        fit(tiny_config(tmp_path, 2, M=16), photos, progress=False)


@pytest.mark.slow
def test_two_process_gloo_training_keeps_ranks_identical(photos, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, sys, torch
        from pathlib import Path
        from nicbook.nn.training import TrainConfig, fit
        torch.set_num_threads(1)
        config = TrainConfig(N=8, M=12, steps=3, batch_size=2, patch_size=32, device="cpu",
                             out_dir={str(tmp_path / "run")!r}, validation_patches=2, log_every=1)
        model = fit(config, [Path(p) for p in {[str(p) for p in photos]!r}], progress=False)
        params = {{name: value for name, value in model.named_parameters()}}
        torch.save(params, Path({str(tmp_path)!r}) / f"rank{{os.environ['RANK']}}.pt")
    """)
    )
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(port), str(script)]  # fmt: skip
    # A session of its own, so a timeout can stop the launcher and both workers together.
    launcher = subprocess.Popen(command, env=environment, text=True, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _, stderr = launcher.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.communicate()
        pytest.fail("two-process training did not finish within 240 s")
    assert launcher.returncode == 0, stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)
    torch.manual_seed(0)
    initial = dict(FactorizedPrior(8, 12).named_parameters())
    assert not torch.equal(rank0["analysis.0.weight"], initial["analysis.0.weight"].detach())
    assert (tmp_path / "run" / CHECKPOINT_NAME).is_file()


def test_default_training_data_is_the_training_folder(training_paths, tiny_config, tmp_path):
    model = fit(tiny_config(tmp_path, 2, batch_size=1), progress=False)
    assert not model.training and not model.entropy_model.tables_stale
    assert all("kodak" not in str(path).lower() for path in training_paths)
