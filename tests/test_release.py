"""nicbook.release: a training run into shipped weights with its record, and a shipped model back into a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nicbook import cli, release, zoo
from nicbook.codec import compress, decompress, read_header
from nicbook.data import load_image
from nicbook.errors import NicbookError
from nicbook.metrics import psnr
from nicbook.nn.checkpoints import save_checkpoint
from nicbook.nn.training import fit


@pytest.fixture
def weights(monkeypatch, tmp_path):
    """An empty folder standing in for the package's weights folder, for export and for loading."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(zoo, "weights_dir", lambda: folder)
    monkeypatch.setattr(release, "weights_dir", lambda: folder)
    return folder


def test_exported_weights_load_from_the_zoo_and_decode_by_name(tmp_path, weights, tiny_model, sample):
    checkpoint = tmp_path / "run.pt"
    save_checkpoint(checkpoint, tiny_model(seed=2))
    path = release.export_weights(checkpoint, quality=3)
    assert path.parent == weights
    state = torch.load(path, weights_only=True)
    assert state["model"]["analysis.0.weight"].dtype == torch.float16
    manifest = json.loads((weights / zoo.MANIFEST_NAME).read_text())
    assert [entry["name"] for entry in manifest["models"]] == ["factorized-q3"]
    assert [entry["name"] for entry in zoo.shipped()] == ["factorized-q3"]

    model = zoo.load("factorized", 3)
    expected = tiny_model(seed=2).analysis[0].weight.half().float()  # the shipped weights are fp16
    assert torch.equal(model.analysis[0].weight, expected)
    data = compress(sample[:64, :80], model)
    assert read_header(data).model == "factorized-q3"
    assert np.array_equal(decompress(data), decompress(data, model))


def test_export_records_the_training_chain_and_the_measured_rd_point(tmp_path, weights, photos, tiny_config):
    fit(tiny_config(tmp_path / "base", 3, batch_size=1), photos[:1], progress=False)
    tuned = tiny_config(tmp_path / "tuned", 2, batch_size=1, lmbda=0.05, seed=7,
                        init_from=str(tmp_path / "base" / "checkpoint.pt"))  # fmt: skip
    fit(tuned, photos[:1], progress=False)
    record = release.training_record(tmp_path / "tuned")
    assert record["steps"] == 5 and record["training_hours"] >= 0
    assert record["recipe"][0].startswith("base: λ=0.013, 3 steps") and "seed" not in record["recipe"][0]
    assert record["recipe"][1].startswith("tuned: λ=0.05, 2 steps from base")
    assert record["recipe"][1].endswith(", seed 7")

    kodak = photos[0].parent
    assert cli.main(["export", str(tmp_path / "tuned"), "--quality", "5", "--kodak", str(kodak)]) == 0
    entry = json.loads((weights / zoo.MANIFEST_NAME).read_text())["models"][0]
    assert (entry["name"], entry["N"], entry["M"], entry["steps"]) == ("factorized-q5", 8, 12, 5)
    assert sorted(entry["kodak"]["images"]) == sorted(path.name for path in photos)
    model = zoo.load("factorized", 5)
    image = load_image(photos[0])
    size, quality = entry["kodak"]["images"][photos[0].name]
    data = compress(image, model)
    assert size == len(data) and quality == pytest.approx(psnr(image, decompress(data)), abs=1e-4)


def test_a_restored_shipped_model_trains_further_and_keeps_its_record(tmp_path, weights, photos, tiny_config):
    fit(tiny_config(tmp_path / "first", 3, batch_size=1), photos[:1], progress=False)
    assert cli.main(["export", str(tmp_path / "first"), "--quality", "2"]) == 0
    assert cli.main(["restore", "2", str(tmp_path / "restored")]) == 0
    with pytest.raises(NicbookError, match="exists already"):
        release.restore_run(2, tmp_path / "restored")
    further = tiny_config(tmp_path / "further", 2, batch_size=1,
                          init_from=str(tmp_path / "restored" / "checkpoint.pt"))  # fmt: skip
    fit(further, photos[:1], progress=False)
    record = release.training_record(tmp_path / "further")
    assert record["steps"] == 5
    assert record["recipe"][0].startswith("first: λ=0.013, 3 steps")
    assert record["recipe"][1].startswith("further: λ=0.013, 2 steps from restored")


def test_a_hyperprior_warm_started_from_a_shipped_model_counts_its_training(tmp_path, weights, photos, tiny_config):
    fit(tiny_config(tmp_path / "base", 3, batch_size=1), photos[:1], progress=False)
    assert cli.main(["export", str(tmp_path / "base"), "--quality", "2"]) == 0
    shipped = json.loads((weights / zoo.MANIFEST_NAME).read_text())["models"][0]
    hyper = tiny_config(tmp_path / "hyper", 2, batch_size=1, patch_size=64, architecture="mean-scale",
                        transforms_from=str(weights / "factorized-q2.pt"))  # fmt: skip
    fit(hyper, photos[:1], progress=False)
    record = release.training_record(tmp_path / "hyper")
    assert record["steps"] == 5
    assert record["training_hours"] == pytest.approx(shipped["training_hours"], abs=0.01)
    assert record["recipe"][0] == shipped["recipe"][0] and record["recipe"][0].startswith("base: λ=0.013, 3 steps")
    assert record["recipe"][1].startswith("hyper: λ=0.013, 2 steps, transforms from factorized-q2")


def test_a_hyper_path_moved_onto_other_transforms_counts_each_training_once(tmp_path, weights, photos, tiny_config):
    """hyperprior-q3 = factorized-q3's transforms + the hyper path of hyperprior-q2 (trained on factorized-q2's)."""
    fit(tiny_config(tmp_path / "base", 3, batch_size=1), photos[:1], progress=False)
    assert cli.main(["export", str(tmp_path / "base"), "--quality", "2"]) == 0
    fit(tiny_config(tmp_path / "other", 4, batch_size=1, seed=1), photos[:1], progress=False)
    assert cli.main(["export", str(tmp_path / "other"), "--quality", "3"]) == 0
    hyper = tiny_config(tmp_path / "hyper", 2, batch_size=1, patch_size=64, architecture="hyperprior",
                        transforms_from=str(weights / "factorized-q2.pt"))  # fmt: skip
    fit(hyper, photos[:1], progress=False)
    assert cli.main(["export", str(tmp_path / "hyper"), "--quality", "2"]) == 0
    moved = tiny_config(tmp_path / "moved", 1, batch_size=1, patch_size=64, architecture="hyperprior",
                        init_from=str(weights / "hyperprior-q2.pt"),
                        transforms_from=str(weights / "factorized-q3.pt"))  # fmt: skip
    fit(moved, photos[:1], progress=False)

    assert release.hyper_path_stages(weights / "hyperprior-q2.pt")["steps"] == 2
    record = release.training_record(tmp_path / "moved")
    assert record["steps"] == 4 + 2 + 1  # factorized-q3, the hyper stage of hyperprior-q2, this run
    assert [line.split(":")[0] for line in record["recipe"]] == ["other", "hyper", "moved"]
    assert record["recipe"][2].startswith("moved: λ=0.013, 1 steps from hyperprior-q2, transforms from factorized-q3")
    with pytest.raises(NicbookError, match="no shipped model"):
        release.hyper_path_stages(tmp_path / "base" / "checkpoint.pt")


def test_a_hyperprior_on_frozen_shipped_transforms_shares_their_file(tmp_path, weights, photos, tiny_config):
    fit(tiny_config(tmp_path / "base", 2, batch_size=1), photos[:1], progress=False)
    release.export_weights(tmp_path / "base" / "checkpoint.pt", quality=2)
    frozen = tiny_config(tmp_path / "frozen", 2, batch_size=1, patch_size=64, architecture="hyperprior",
                         transforms_from=str(weights / "factorized-q2.pt"), freeze_transforms_until=2)  # fmt: skip
    fit(frozen, photos[:1], progress=False)
    moving = tiny_config(tmp_path / "moving", 2, batch_size=1, patch_size=64, architecture="hyperprior", lr=1e-2,
                         transforms_from=str(weights / "factorized-q2.pt"))  # fmt: skip
    fit(moving, photos[:1], progress=False)
    shared = release.export_weights(tmp_path / "frozen" / "checkpoint.pt", quality=2)
    whole = release.export_weights(tmp_path / "moving" / "checkpoint.pt", quality=3)
    entries = {entry["name"]: entry for entry in zoo.manifest_entries()}
    assert entries["hyperprior-q2"]["transforms"] == "factorized-q2" and "transforms" not in entries["hyperprior-q3"]
    stored = torch.load(shared, weights_only=True)
    assert not any(key.startswith(("analysis.", "synthesis.")) for key in stored["model"])
    assert shared.stat().st_size < whole.stat().st_size

    model, factorized = zoo.load("hyperprior", 2), zoo.load("factorized", 2)
    assert torch.equal(model.synthesis[0].weight, factorized.synthesis[0].weight)
    data = compress(load_image(photos[0])[:64, :64], model)
    assert np.array_equal(decompress(data), decompress(data, model))  # by name from the zoo, and as loaded

    path = weights / "factorized-q2.pt"  # a changed shared file is refused, not silently used
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(NicbookError, match="has changed"):
        zoo.load_checkpoint(shared)
    path.unlink()
    with pytest.raises(NicbookError, match="is missing"):
        zoo.load_checkpoint(shared)


def test_a_restored_shipped_hyperprior_trains_its_hyper_path_further_and_still_shares_its_transforms(
    tmp_path, weights, photos, tiny_config
):
    fit(tiny_config(tmp_path / "base", 3, batch_size=1), photos[:1], progress=False)
    assert cli.main(["export", str(tmp_path / "base"), "--quality", "2"]) == 0
    options = {"architecture": "hyperprior", "quantization": "mixed", "patch_size": 64, "hyper_path_only": True}
    fit(tiny_config(tmp_path / "hyper", 2, **options, transforms_from=str(weights / "factorized-q2.pt")),
        photos[:1], progress=False)  # fmt: skip
    assert cli.main(["export", str(tmp_path / "hyper"), "--quality", "2"]) == 0
    assert cli.main(["restore", "2", str(tmp_path / "restored"), "--model", "hyperprior"]) == 0
    restored = tmp_path / "restored" / "checkpoint.pt"
    fit(tiny_config(tmp_path / "further", 3, **options, init_from=str(restored)), photos[:1], progress=False)
    assert cli.main(["export", str(tmp_path / "further"), "--quality", "2"]) == 0
    entry = zoo.verified_entry("hyperprior-q2", weights)
    assert entry["transforms"] == "factorized-q2" and entry["steps"] == 3 + 2 + 3
    assert entry["recipe"][-1].startswith("further: λ=0.013, 3 steps from restored, hyper path alone")
    further = zoo.load("hyperprior", 2)
    assert torch.equal(further.analysis[0].weight, zoo.load("factorized", 2).analysis[0].weight)
