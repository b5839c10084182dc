"""nicbook.zoo: the configured models, and the trained ones shipped in the package: complete
manifest, checked files, loadable anywhere, still reaching the Kodak rate–distortion points
recorded when they were released."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from nicbook import codec, data, evaluation, metrics, zoo
from nicbook.errors import ChecksumError, DataNotFoundError, NicbookError
from nicbook.nn.checkpoints import save_checkpoint

SHIPPED = zoo.shipped()
#: Kodak images the regression test re-measures (the manifest holds all 24).
REGRESSION_IMAGES = ("kodim04.png", "kodim19.png")
#: All shipped weights together (fp16) stay within this budget.
MAX_WEIGHTS_BYTES = 120 * 10**6


def test_a_family_of_at_least_five_factorized_models_is_shipped():
    qualities = [entry["quality"] for entry in SHIPPED if entry["architecture"] == "factorized"]
    assert len(qualities) >= 5, f"shipped factorized models: {qualities}"


def test_released_points_climb_with_quality_from_low_to_high_rates():
    """Each quality step buys both bits and PSNR, and the ladder spans about 0.1 to over 1.35 bpp
    (the rates of files written with per-image scales, the default)."""
    entries = sorted((e for e in SHIPPED if e["architecture"] == "factorized"), key=lambda e: e["quality"])
    rates = [entry["kodak"]["bpp"] for entry in entries]
    psnrs = [entry["kodak"]["psnr"] for entry in entries]
    assert rates == sorted(set(rates)) and psnrs == sorted(set(psnrs)), (rates, psnrs)
    assert rates[0] < 0.15 and rates[-1] > 1.35, rates


def test_the_hyperprior_family_spans_the_ladder_and_beats_the_factorized_family_at_every_rate():
    """At least six qualities from about 0.1 to past 1.35 bpp, each above the factorized curve at its rate."""
    entries = [e for e in SHIPPED if e["architecture"] == "hyperprior"]
    rates, _ = zoo.released_curve("hyperprior")
    assert len(entries) >= 6 and rates[0] < 0.15 and rates[-1] > 1.35, rates
    for entry in entries:
        point = (entry["kodak"]["bpp"], entry["kodak"]["psnr"])
        assert evaluation.gain_at_equal_rate(point, zoo.released_curve("factorized")) > 0, entry["name"]


@pytest.mark.slow
def test_readme_states_the_kodak_bd_rates_the_manifest_and_the_codecs_give(kodak_paths):
    """The README's table: the neural families from their manifest points, the other codecs measured now."""
    from nicbook.pillow_codecs import CODECS, available_codecs

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    stated = {name: float(value.replace("−", "-"))
              for name, value in re.findall(r"^\| (.+?) \| ([−+]?[\d.]+) % \|$", readme, re.MULTILINE)}  # fmt: skip
    images = [data.load_image(path) for path in kodak_paths]
    jpeg = evaluation.rd_curve(CODECS["JPEG"], images)
    curves = {f"nicbook {architecture}": zoo.released_curve(architecture) for architecture in ("factorized", "hyperprior")}
    curves.update({name: evaluation.rd_curve(CODECS[name], images) for name in available_codecs() if name != "JPEG"})
    assert set(stated) == set(curves), stated
    for name, curve in curves.items():
        assert stated[name] == pytest.approx(metrics.bd_rate(jpeg, curve), abs=0.051), name


def test_shipped_weights_fit_the_budget():
    total = sum((zoo.weights_dir() / entry["file"]).stat().st_size for entry in SHIPPED)
    assert total <= MAX_WEIGHTS_BYTES, f"{total / 1e6:.1f} MB of weights"


@pytest.mark.parametrize("entry", SHIPPED, ids=[entry["name"] for entry in SHIPPED])
def test_manifest_records_training_and_release_point(entry):
    assert entry["steps"] > 0 and entry["training_hours"] > 0 and entry["recipe"]
    assert "Kodak" in entry["data"] and entry["hardware"]
    kodak = entry["kodak"]
    assert len(kodak["images"]) == 24
    assert kodak["bpp"] == pytest.approx(
        np.mean([8 * size / (768 * 512) for size, _ in kodak["images"].values()]), rel=1e-3
    )


@pytest.mark.parametrize("entry", SHIPPED, ids=[entry["name"] for entry in SHIPPED])
def test_model_loads_without_any_data_and_round_trips(entry, monkeypatch, sample):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    model = zoo.load(entry["architecture"], entry["quality"])
    image = sample[:96, :128]
    nic = codec.compress(image, model)
    assert codec.read_header(nic).model == entry["name"]
    assert np.array_equal(codec.decompress(nic), codec.decompress(nic, model))


@pytest.mark.parametrize("entry", SHIPPED, ids=[entry["name"] for entry in SHIPPED])
def test_model_still_reaches_its_release_point_on_kodak(entry, kodak_paths):
    model = zoo.load(entry["architecture"], entry["quality"])
    by_name = {path.name: path for path in kodak_paths}
    for name in REGRESSION_IMAGES:
        image = data.load_image(by_name[name])
        nic = codec.compress(image, model)
        released_bytes, released_psnr = entry["kodak"]["images"][name]
        assert len(nic) == pytest.approx(released_bytes, rel=0.01), name
        assert metrics.psnr(image, codec.decompress(nic, model)) == pytest.approx(released_psnr, abs=0.05), name


def test_zoo_lists_configurations_and_explains_missing_weights(tmp_path):
    entries = zoo.available(tmp_path)
    assert [entry["name"] for entry in entries][:2] == ["factorized-q0", "factorized-q1"]
    assert entries[1]["lmbda"] == 0.0018 and not any(entry["shipped"] for entry in entries)
    assert zoo.manifest_entries(tmp_path) == [] and zoo.shipped(folder=tmp_path) == []
    with pytest.raises(DataNotFoundError, match="not shipped"):
        zoo.load("factorized", 4, folder=tmp_path)
    with pytest.raises(NicbookError, match="qualities 0..8"):
        zoo.load("factorized", 9)
    with pytest.raises(NicbookError, match="unknown model"):
        zoo.load("no-such-model", 1)
    with pytest.raises(NicbookError, match="not a zoo model"):
        zoo.load_by_name("my-own-model")


def write_manifest(folder, name: str, file: str, sha256: str) -> None:
    entry = {"name": name, "file": file, "sha256": sha256, **zoo.configuration("factorized", 3)}
    (folder / zoo.MANIFEST_NAME).write_text(json.dumps({"format": 1, "models": [entry]}))


def test_a_file_loads_only_when_it_matches_its_manifest_entry(tmp_path, tiny_model):
    import hashlib

    path = tmp_path / "factorized-q3.pt"
    save_checkpoint(path, tiny_model(seed=2))
    write_manifest(tmp_path, "factorized-q3", path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    assert zoo.verified_entry("factorized-q3", tmp_path)["file"] == path.name
    assert [entry["name"] for entry in zoo.available(tmp_path) if entry["shipped"]] == ["factorized-q3"]
    model = zoo.load("factorized", 3, folder=tmp_path)
    assert model.name == "factorized-q3" and not model.training
    assert torch.equal(model.analysis[0].weight, tiny_model(seed=2).analysis[0].weight)

    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    path.write_bytes(bytes(tampered))
    with pytest.raises(ChecksumError, match="does not match"):
        zoo.load("factorized", 3, folder=tmp_path)
    path.unlink()
    with pytest.raises(DataNotFoundError, match="missing"):
        zoo.load("factorized", 3, folder=tmp_path)
    (tmp_path / zoo.MANIFEST_NAME).write_text("{not json")
    with pytest.raises(NicbookError, match="unreadable weights manifest"):
        zoo.available(tmp_path)


def test_a_user_checkpoint_loads_as_its_model(tmp_path, tiny_model):
    save_checkpoint(tmp_path / "mine.pt", tiny_model(seed=4))
    loaded = zoo.load_checkpoint(tmp_path / "mine.pt")
    assert torch.equal(loaded.synthesis[0].weight, tiny_model(seed=4).synthesis[0].weight)


def test_weights_path_is_the_manifests_checked_file():
    pytest.importorskip("torch")
    from nicbook import zoo
    from nicbook.errors import NicbookError

    manifest = json.loads((zoo.weights_dir() / zoo.MANIFEST_NAME).read_text())
    entry = next(e for e in manifest["models"] if e["name"] == "factorized-q4")
    path = zoo.weights_path("factorized", 4)
    assert path == zoo.weights_dir() / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    with pytest.raises(NicbookError):
        zoo.weights_path("factorized", 99)


def test_weights_path_refuses_a_file_that_does_not_match(tmp_path):
    pytest.importorskip("torch")
    from nicbook import zoo
    from nicbook.errors import ChecksumError, DataNotFoundError

    (tmp_path / zoo.MANIFEST_NAME).write_text(json.dumps(
        {"format": 1, "models": [{"name": "factorized-q2", "file": "q2.pt", "sha256": "0" * 64}]}
    ))
    (tmp_path / "q2.pt").write_bytes(b"not the recorded file")
    with pytest.raises(ChecksumError):
        zoo.weights_path("factorized", 2, tmp_path)
    with pytest.raises(DataNotFoundError):
        zoo.weights_path("factorized", 3, tmp_path)
