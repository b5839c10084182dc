"""nicbook.nn.checkpoints: checkpoint files (safe loading, snapshots) and training logs."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from nicbook.errors import NicbookError
from nicbook.nn.checkpoints import (
    CHECKPOINT_NAME,
    LOG_NAME,
    append_log,
    drop_log_after,
    load_checkpoint,
    load_weights,
    model_from_checkpoint,
    read_log,
    read_training_log,
    save_checkpoint,
    save_snapshot,
    training_seconds,
)
from nicbook.nn.models import FactorizedPrior


def test_checkpoint_round_trip_keeps_weights_and_tables(tmp_path):
    torch.manual_seed(3)
    model = FactorizedPrior(8, 12)
    save_checkpoint(tmp_path / "model.pt", model, step=7, config={"lmbda": 0.01})
    state = load_checkpoint(tmp_path / "model.pt")
    assert state["step"] == 7 and state["train_config"] == {"lmbda": 0.01}
    loaded = model_from_checkpoint(state)
    assert not loaded.training and not loaded.entropy_model.tables_stale
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert not list(tmp_path.glob("*.partial"))


def test_a_snapshot_keeps_float16_weights_and_the_log_but_no_optimizer(tmp_path):
    torch.manual_seed(0)
    model = FactorizedPrior(8, 12)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 3, 32, 32)).bits.backward()
    optimizer.step()
    run = tmp_path / "run"
    save_checkpoint(run / CHECKPOINT_NAME, model, optimizer, step=3)
    append_log(run / LOG_NAME, {"step": 3, "split": "train", "loss": 1.0, "seconds": 2.0})
    snapshot = save_snapshot(run, tmp_path / "kept")
    state = load_checkpoint(snapshot)
    assert snapshot == tmp_path / "kept" / CHECKPOINT_NAME
    assert state["step"] == 3 and "optimizer" not in state
    assert all(tensor.dtype == torch.float16 for name, tensor in state["model"].items() if "weight" in name)
    assert snapshot.stat().st_size < (run / CHECKPOINT_NAME).stat().st_size
    assert (tmp_path / "kept" / LOG_NAME).read_text() == (run / LOG_NAME).read_text()
    restored = model_from_checkpoint(state)
    weight = model.analysis[0].weight.detach()
    torch.testing.assert_close(restored.analysis[0].weight, weight.half().float())


class _RunsCode:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    with path.open("wb") as file:
        pickle.dump({"format": "nicbook-checkpoint", "model": _RunsCode(marker)}, file)
    with pytest.raises(NicbookError, match="refusing to load"):
        load_checkpoint(path)
    torch.save({"payload": _RunsCode(marker)}, tmp_path / "evil_zip.pt")
    with pytest.raises(NicbookError, match="refusing to load"):
        load_checkpoint(tmp_path / "evil_zip.pt")
    assert not marker.exists()


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(NicbookError, match="junk.pt: refusing"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(NicbookError, match="not a nicbook checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(NicbookError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_weights_of_another_size_are_refused_with_advice(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "small.pt", FactorizedPrior(8, 12))
    target = FactorizedPrior(8, 16)
    with pytest.raises(NicbookError, match="N=8, M=12 factorized model, not N=8, M=16 factorized: retrain"):
        load_weights(tmp_path / "small.pt", target, "retrain")
    same = FactorizedPrior(8, 12)
    state = load_weights(tmp_path / "small.pt", same, "unused")
    assert torch.equal(same.analysis[0].weight, state["model"]["analysis.0.weight"])


def test_logs_are_appended_split_and_cut_back(tmp_path):
    path = tmp_path / LOG_NAME
    records = [
        {"step": 10, "split": "train", "loss": 2.0},
        {"step": 10, "split": "validation", "loss": 3.0},
        {"step": 20, "split": "train", "loss": 1.0},
    ]
    for record in records:
        append_log(path, record)
    append_log(None, {"step": 99})  # no log file: nothing happens
    path.write_text(path.read_text() + "\n")  # a blank line is skipped
    assert read_log(path) == records
    log = read_training_log(tmp_path)
    assert [record["loss"] for record in log["train"]] == [2.0, 1.0]
    assert [record["step"] for record in log["validation"]] == [10]
    drop_log_after(path, 10)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [10, 10]


def test_training_time_adds_up_the_sittings_of_a_resumed_run(tmp_path):
    assert training_seconds(tmp_path) == 0.0
    for step, seconds in enumerate([5.0, 10.0, 15.0, 4.0, 9.0], start=1):  # resumed after step 3
        append_log(tmp_path / LOG_NAME, {"step": step, "split": "train", "seconds": seconds})
    append_log(tmp_path / LOG_NAME, {"step": 5, "split": "validation", "seconds": 1.0})
    assert training_seconds(tmp_path) == 15.0 + 9.0
