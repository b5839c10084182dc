"""The .nic container: exact round trips, checks on broken files, determinism, and the zoo."""

from __future__ import annotations

import copy
import json
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from PIL import Image

from nicbook import cli, zoo
from nicbook.codec import MAGIC, compress, decode_latents, decompress, read_header
from nicbook.data import sample_image
from nicbook.errors import (
    BitstreamError,
    ChecksumError,
    DataNotFoundError,
    NicbookError,
    UnsupportedFormatError,
)
from nicbook.models import FactorizedPrior
from nicbook.metrics import psnr
from nicbook.train import TrainConfig, fit, save_checkpoint


DATA = Path(__file__).parent / "data"
#: Training settings small enough for a unit test: a few steps of a tiny model.
TINY_RUN = {"N": 8, "M": 12, "batch_size": 1, "patch_size": 32, "device": "cpu",
            "validation_patches": 1, "log_every": 1}  # fmt: skip


def make_model(seed: int = 0, M: int = 12, N: int = 8) -> FactorizedPrior:
    torch.manual_seed(seed)
    model = FactorizedPrior(N, M).eval()
    model.entropy_model.update_tables()
    return model


@pytest.fixture(scope="module")
def model() -> FactorizedPrior:
    return make_model()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return sample_image()[100:180, 200:296].copy()


@pytest.fixture(scope="module")
def encoded(model, image) -> bytes:
    return compress(image, model)


@pytest.fixture
def photo(tmp_path, image) -> Path:
    """The test image as the only photo of a folder."""
    (tmp_path / "photos").mkdir()
    Image.fromarray(image).save(tmp_path / "photos" / "a.png")
    return tmp_path / "photos" / "a.png"


@pytest.fixture(scope="module")
def static_encoded(model, image) -> bytes:
    return compress(image, model, adaptive=False)


def refresh_crc(body: bytes) -> bytes:
    """``body`` (a file without its CRC) with a valid CRC appended, as a forger would do."""
    return body + struct.pack(">I", zlib.crc32(body))


def test_decoded_latents_equal_the_rounded_analysis_output(model, image, encoded):
    header, symbols, _ = decode_latents(encoded, model)
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).double() / 255
    with torch.no_grad():
        y = copy.deepcopy(model.analysis).double()(x)[0]
    expected = torch.round(y - model.entropy_model.medians.double().reshape(-1, 1, 1)).long().numpy()
    assert np.array_equal(symbols, expected)
    assert header.latent_shape == (12, 5, 6) and (header.height, header.width) == (80, 96)


@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (16, 16), (17, 40)])
def test_any_image_size_round_trips(model, shape):
    image = sample_image()[: shape[0], : shape[1]]
    decoded = decompress(compress(image, model), model)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    assert np.array_equal(decoded, decompress(compress(image, model), model))


def test_decoded_image_is_the_synthesis_of_the_rounded_latents(model, image, encoded):
    model.eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255).x_hat
    expected = torch.round(expected.clamp(0, 1) * 255)[0].permute(1, 2, 0).numpy()
    assert np.abs(decompress(encoded, model).astype(int) - expected).max() <= 1


def test_actual_bits_stay_close_to_the_estimate(model, static_encoded):
    header, symbols, _ = decode_latents(static_encoded, model)
    estimate = model.estimated_bits(symbols)
    assert 8 * header.payload_length <= 1.02 * estimate + 128
    assert 8 * header.payload_length >= 0.9 * estimate


def test_header_fields(model, encoded, static_encoded):
    header = read_header(encoded)
    assert encoded.startswith(MAGIC) and header.model == model.name
    assert header.file_size == len(encoded)
    assert (header.version, read_header(static_encoded).version) == (3, 1)


def test_both_versions_hold_the_same_latents_and_image(model, encoded, static_encoded):
    _, adaptive_symbols, _ = decode_latents(encoded, model)
    _, static_symbols, _ = decode_latents(static_encoded, model)
    assert np.array_equal(adaptive_symbols, static_symbols)
    assert np.array_equal(decompress(encoded, model), decompress(static_encoded, model))


def test_per_image_scales_make_a_shipped_model_s_files_smaller():
    model = zoo.load("factorized", quality=3)
    image = sample_image()[:256, :384]
    adaptive, static = compress(image, model), compress(image, model, adaptive=False)
    assert len(adaptive) < 0.97 * len(static)
    assert np.array_equal(decompress(adaptive, model), decompress(static, model))



def test_files_of_the_previous_release_still_decode():
    """Version-2 and version-1 files of one crop, written by the release before version 3: both
    hold the same latents, and re-encoding the decoded latents gives the version-1 file again."""
    model = zoo.load("factorized", quality=2)
    files = {v: (DATA / f"sample-q2-version{v}.nic").read_bytes() for v in (1, 2)}
    (header_2, latents_2, _), (header_1, latents_1, _) = (decode_latents(files[v], model) for v in (2, 1))
    assert (header_2.version, header_1.version) == (2, 1)
    assert np.array_equal(latents_2, latents_1)
    assert model.compress_latents(latents_1) == files[1][header_1.payload_offset : -4]
    assert np.array_equal(decompress(files[2], model), decompress(files[1], model))

@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda data: data[:-1], BitstreamError, "truncated"),
        (lambda data: data[:12], BitstreamError, "truncated"),
        (lambda data: data + b"\0", BitstreamError, "trailing"),
        (lambda data: b"garbage!" * 8, BitstreamError, "not a .nic file"),
        (lambda data: b"", BitstreamError, "not a .nic file"),
        (lambda data: data[:40] + bytes([data[40] ^ 0x10]) + data[41:], BitstreamError, "checksum"),
        (lambda data: refresh_crc(data[:4] + b"\x07" + data[5:-4]), UnsupportedFormatError, "version 7"),
    ],
)
def test_broken_files_raise_clear_errors(model, encoded, mutate, error, message):
    with pytest.raises(error, match=message):
        decompress(mutate(encoded), model)


def test_wrong_model_is_refused(encoded):
    with pytest.raises(BitstreamError, match="encoded with model"):
        decompress(encoded, make_model(seed=1))
    with pytest.raises(BitstreamError, match="latent channels"):
        decompress(encoded, make_model(seed=0, M=16))


@pytest.mark.parametrize("where", [0, 3, -5])
def test_corrupt_payload_with_valid_crc_raises(model, encoded, static_encoded, where):
    for data in (encoded, static_encoded):
        header = read_header(data)
        body = bytearray(data[:-4])
        body[header.payload_offset + where % header.payload_length] ^= 0xFF
        with pytest.raises(BitstreamError):
            decompress(refresh_crc(bytes(body)), model)


def _forge_size(data: bytes, height: int, width: int) -> bytes:
    header = read_header(data)
    fixed_at = header.payload_offset - 26
    body = bytearray(data[:-4])
    struct.pack_into(">II", body, fixed_at + 8, height, width)
    struct.pack_into(">HH", body, fixed_at + 18, -(-height // 16), -(-width // 16))
    return refresh_crc(bytes(body))


@pytest.mark.parametrize("adaptive", [True, False])
@pytest.mark.parametrize(
    ("height", "width", "message"), [(100_000, 100_000, "limit"), (8000, 8000, "payload")]
)
def test_forged_huge_header_fails_before_allocating(model, image, adaptive, height, width, message):
    encoded = compress(image, model, adaptive=adaptive)
    tracemalloc.start()
    try:
        with pytest.raises(BitstreamError, match=message):
            decompress(_forge_size(encoded, height, width), model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_latent_shape_must_fit_the_image_size(model, encoded):
    header = read_header(encoded)
    body = bytearray(encoded[:-4])
    struct.pack_into(">H", body, header.payload_offset - 26 + 18, 200)
    with pytest.raises(BitstreamError, match="does not fit"):
        decompress(refresh_crc(bytes(body)), model)


def test_non_images_are_refused(model):
    with pytest.raises(NicbookError):
        compress(np.zeros((4, 4, 3), dtype=np.float32), model)
    with pytest.raises(NicbookError, match="FactorizedPrior"):
        compress(np.zeros((4, 4, 3), dtype=np.uint8), torch.nn.Identity())


_THREADED = """
import sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from nicbook import codec, zoo
model = zoo.load_checkpoint(sys.argv[2])
if sys.argv[3] == "encode":
    from nicbook.data import sample_image, to_tensor
    image = sample_image()[:256, :384]
    open(sys.argv[4], "wb").write(codec.compress(image, model))
    np.save(sys.argv[5], model.latent_symbols(to_tensor(image)))
else:
    header, symbols, _ = codec.decode_latents(open(sys.argv[4], "rb").read(), model)
    np.save(sys.argv[5], symbols)
    np.save(sys.argv[6], codec.decompress(open(sys.argv[4], "rb").read(), model))
    np.save(sys.argv[7], model.synthesize(symbols).numpy())
"""


@pytest.mark.slow
def test_streams_are_identical_across_thread_counts(tmp_path):
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, make_model(seed=5, N=64, M=32))

    def run(*args):
        subprocess.run([sys.executable, "-c", _THREADED, *map(str, args)], check=True, timeout=120)

    for encoder_threads in (1, 2):
        nic = tmp_path / f"encoded{encoder_threads}.nic"
        run(encoder_threads, checkpoint, "encode", nic, tmp_path / "encoded.npy")
        for threads in (1, 2):
            outputs = [tmp_path / f"{kind}{threads}.npy" for kind in ("symbols", "image", "float")]
            run(threads, checkpoint, "decode", nic, *outputs)
        assert np.array_equal(np.load(tmp_path / "symbols1.npy"), np.load(tmp_path / "encoded.npy"))
        for kind in ("symbols", "image", "float"):  # "float": the synthesis output before rounding
            assert np.array_equal(
                np.load(tmp_path / f"{kind}1.npy"), np.load(tmp_path / f"{kind}2.npy")
            ), (kind, encoder_threads)


# --------------------------------------------------------------------------- zoo


def test_zoo_lists_configurations_and_explains_missing_weights(tmp_path):
    entries = zoo.available(tmp_path)
    assert [entry["name"] for entry in entries][:2] == ["factorized-q0", "factorized-q1"]
    assert entries[1]["lmbda"] == 0.0018 and not any(entry["shipped"] for entry in entries)
    with pytest.raises(DataNotFoundError, match="not shipped"):
        zoo.load("factorized", 4, folder=tmp_path)
    with pytest.raises(NicbookError, match="qualities 0..8"):
        zoo.load("factorized", 9)
    with pytest.raises(NicbookError, match="unknown model"):
        zoo.load("hyperprior", 1)
    with pytest.raises(NicbookError, match="not a zoo model"):
        zoo.load_by_name("my-own-model")


def test_exported_weights_load_from_the_zoo_and_decode_by_name(tmp_path, monkeypatch, image):
    checkpoint = tmp_path / "run.pt"
    save_checkpoint(checkpoint, make_model(seed=2))
    path = zoo.export_weights(checkpoint, quality=3, folder=tmp_path)
    state = torch.load(path, weights_only=True)
    assert state["model"]["analysis.0.weight"].dtype == torch.float16
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["models"][0]["name"] == "factorized-q3"
    assert [entry["name"] for entry in zoo.available(tmp_path) if entry["shipped"]] == ["factorized-q3"]

    monkeypatch.setattr(zoo, "weights_dir", lambda: tmp_path)
    model = zoo.load("factorized", 3)
    data = compress(image, model)
    assert read_header(data).model == "factorized-q3"
    assert np.array_equal(decompress(data), decompress(data, model))

    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    path.write_bytes(bytes(tampered))
    with pytest.raises(ChecksumError):
        zoo.load("factorized", 3)


def test_export_records_the_training_chain_and_the_measured_rd_point(tmp_path, monkeypatch, image, photo):
    fit(TrainConfig(steps=3, out_dir=str(tmp_path / "base"), **TINY_RUN), [photo], progress=False)
    tuned = TrainConfig(steps=2, lmbda=0.05, seed=7, out_dir=str(tmp_path / "tuned"),
                        init_from=str(tmp_path / "base" / "checkpoint.pt"), **TINY_RUN)  # fmt: skip
    fit(tuned, [photo], progress=False)
    record = zoo.training_record(tmp_path / "tuned")
    assert record["steps"] == 5 and record["training_hours"] >= 0
    assert record["recipe"][0].startswith("base: λ=0.013, 3 steps") and "seed" not in record["recipe"][0]
    assert record["recipe"][1].startswith("tuned: λ=0.05, 2 steps from base")
    assert record["recipe"][1].endswith(", seed 7")

    monkeypatch.setattr(zoo, "weights_dir", lambda: tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    assert cli.main(["export", str(tmp_path / "tuned"), "--quality", "5", "--kodak", str(photo.parent)]) == 0
    entry = json.loads((tmp_path / "weights" / "manifest.json").read_text())["models"][0]
    assert (entry["name"], entry["N"], entry["M"], entry["steps"]) == ("factorized-q5", 8, 12, 5)
    size, quality = entry["kodak"]["images"]["a.png"]
    model = zoo.load("factorized", 5)
    data = compress(image, model)
    assert size == len(data) and quality == pytest.approx(psnr(image, decompress(data)), abs=1e-4)


def test_a_restored_shipped_model_trains_further_and_keeps_its_record(tmp_path, monkeypatch, photo):
    fit(TrainConfig(steps=3, out_dir=str(tmp_path / "first"), **TINY_RUN), [photo], progress=False)
    monkeypatch.setattr(zoo, "weights_dir", lambda: tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    assert cli.main(["export", str(tmp_path / "first"), "--quality", "2"]) == 0
    assert cli.main(["restore", "2", str(tmp_path / "restored")]) == 0
    with pytest.raises(NicbookError, match="exists already"):
        zoo.restore_run(2, tmp_path / "restored")
    further = TrainConfig(steps=2, out_dir=str(tmp_path / "further"),
                          init_from=str(tmp_path / "restored" / "checkpoint.pt"), **TINY_RUN)  # fmt: skip
    fit(further, [photo], progress=False)
    record = zoo.training_record(tmp_path / "further")
    assert record["steps"] == 5
    assert record["recipe"][0].startswith("first: λ=0.013, 3 steps")
    assert record["recipe"][1].startswith("further: λ=0.013, 2 steps from restored")
