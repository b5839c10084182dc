"""The trained models shipped in the package: complete manifest, loadable anywhere, and still
reaching the Kodak rate–distortion points recorded when they were released."""

from __future__ import annotations

import numpy as np
import pytest

from nicbook import codec, data, metrics, zoo

SHIPPED = zoo.shipped()
#: Kodak images the regression test re-measures (the manifest holds all 24).
REGRESSION_IMAGES = ("kodim04.png", "kodim19.png")
MAX_FILE_BYTES = 8 * 2**20


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


@pytest.mark.parametrize("entry", SHIPPED, ids=[entry["name"] for entry in SHIPPED])
def test_manifest_records_training_and_release_point(entry):
    assert (zoo.weights_dir() / entry["file"]).stat().st_size <= MAX_FILE_BYTES
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
