"""nicbook.evaluation: RD points measured from the bytes of real files and the PSNR of their decodings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nicbook import evaluation, metrics
from nicbook.blockcoder import DCTCoder
from nicbook.data import save_image
from nicbook.errors import NicbookError
from nicbook.pillow_codecs import CODECS


class CoarseRaw:
    """A "codec" that coarsens the samples to multiples of ``step`` and stores them raw, after a
    2-byte size header: its files are 24 bits per pixel plus 16 bits per image."""

    settings = (1, 16)

    def encode(self, image: np.ndarray, step: int) -> bytes:
        return bytes([image.shape[0], image.shape[1]]) + (image // step * step).astype(np.uint8).tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data[2:], dtype=np.uint8).reshape(data[0], data[1], 3)


def mse_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [np.random.default_rng(seed).integers(0, 256, (4, 6, 3), dtype=np.uint8) for seed in (0, 1)]


def test_rd_curve_measures_files_and_their_decodes(images):
    rates, qualities = evaluation.rd_curve(CoarseRaw(), images, [1, 16])
    assert rates == pytest.approx([24 + 16 / 24, 24 + 16 / 24])
    expected = np.mean([mse_psnr(image, image // 16 * 16) for image in images])
    assert qualities[0] == math.inf and qualities[1] == pytest.approx(expected)
    default_rates, default_qualities = evaluation.rd_curve(CoarseRaw(), images)  # the codec's own sweep
    assert np.array_equal(default_rates, rates) and np.array_equal(default_qualities, qualities)


def test_rd_curve_needs_images_and_settings(images):
    with pytest.raises(ValueError, match="at least one image"):
        evaluation.rd_curve(CoarseRaw(), [], [1])

    class NoSweep(CoarseRaw):
        settings = None

    with pytest.raises(ValueError, match="no default settings"):
        evaluation.rd_curve(NoSweep(), images)


def test_image_records_and_their_mean(images):
    codec = CoarseRaw()
    records = evaluation.image_records(lambda image: codec.encode(image, 16), codec.decode, images, ["a", "b"])
    assert [record["image"] for record in records] == ["a", "b"]
    assert all(record["bytes"] == 2 + 4 * 6 * 3 for record in records)
    assert records[1]["psnr"] == pytest.approx(mse_psnr(images[1], images[1] // 16 * 16))
    rate, quality = evaluation.mean_point(records)
    assert rate == pytest.approx(24 + 16 / 24)
    assert quality == pytest.approx((records[0]["psnr"] + records[1]["psnr"]) / 2)
    assert evaluation.mean_point(records, rate="bytes")[0] == 74


def test_evaluate_folder_measures_every_image_of_a_folder(tmp_path, images):
    for name, image in zip(("b.png", "a.png"), images):
        save_image(image, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    codec = CoarseRaw()
    point = evaluation.evaluate_folder(
        tmp_path, lambda image: codec.encode(image, 16), codec.decode, "coarse", progress=False
    )
    assert point["model"] == "coarse" and [record["image"] for record in point["images"]] == ["a.png", "b.png"]
    assert point["bpp"] == pytest.approx(24 + 16 / 24)
    assert point["psnr"] == pytest.approx(np.mean([mse_psnr(im, im // 16 * 16) for im in images]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NicbookError, match="no images"):
        evaluation.evaluate_folder(tmp_path / "empty", codec.encode, codec.decode, "coarse", progress=False)


class SizedCodec:
    """A fake codec whose file for setting ``s`` is ``s`` bytes long and decodes to a fixed image."""

    settings = (40, 10, 30, 20)

    def __init__(self, decoded: np.ndarray | None = None) -> None:
        self.decoded = decoded
        self.calls: list[float] = []

    def encode(self, image: np.ndarray, setting: float) -> bytes:
        self.calls.append(setting)
        return bytes([int(setting) % 256]) * int(setting)

    def decode(self, data: bytes) -> np.ndarray:
        return self.decoded


def test_closest_setting_picks_the_file_nearest_the_target_rate():
    image = np.zeros((10, 10, 3), dtype=np.uint8)  # 100 pixels: s bytes are 8 s / 100 bpp
    target = 8 * 26 / 100  # 26 bytes: 30 is 4 bytes away, 20 is 6
    setting, data = evaluation.closest_setting(SizedCodec(), image, target, settings=[10, 20, 30, 40])
    assert setting == 30
    assert data == bytes([30]) * 30


def test_closest_setting_uses_the_codecs_sweep_and_keeps_the_first_of_a_tie():
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    codec = SizedCodec()
    setting, _ = evaluation.closest_setting(codec, image, 8 * 25 / 100)  # 20 and 30 equally far
    assert codec.calls == list(SizedCodec.settings)
    assert setting == 30  # the sweep lists 30 before 20


def test_closest_setting_finds_a_real_jpeg_file_of_a_known_size(sample):
    image = sample[:96, :128]
    jpeg = CODECS["JPEG"]
    target = metrics.bpp(jpeg.encode(image, 47), image.shape)
    setting, data = evaluation.closest_setting(jpeg, image, target, range(1, 101))
    assert metrics.bpp(data, image.shape) == target
    assert data == jpeg.encode(image, setting)


def test_closest_setting_needs_settings():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    codec = DCTCoder()  # no default sweep
    with pytest.raises(ValueError, match="settings"):
        evaluation.closest_setting(codec, image, 1.0)
    with pytest.raises(ValueError, match="settings"):
        evaluation.closest_setting(SizedCodec(), image, 1.0, settings=[])


def test_gain_at_equal_rate_interpolates_the_curve_in_log_rate():
    curve = ([0.2, 0.8, 0.4], [30.0, 36.0, 33.0])  # any order; 0.4 bpp is half way in log-rate
    assert evaluation.gain_at_equal_rate((0.4, 34.0), curve) == pytest.approx(1.0)
    assert evaluation.gain_at_equal_rate((np.sqrt(0.08), 31.0), curve) == pytest.approx(-0.5)
    assert evaluation.gain_at_equal_rate((0.8, 36.0), curve) == pytest.approx(0.0)
    # just beyond an end the last segment is extended; farther out the curve says nothing
    assert evaluation.gain_at_equal_rate((0.8 * np.sqrt(2) ** 0.2, 36.5), curve) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="outside the curve"):
        evaluation.gain_at_equal_rate((0.9, 37.0), curve)
    with pytest.raises(ValueError, match="outside the curve"):
        evaluation.gain_at_equal_rate((0.4, 37.0), ([0.4], [33.0]))


def test_rd_cost_adds_lambda_times_the_mse_on_the_0_255_scale():
    # 30 dB is an MSE of 255² / 1000 = 65.025
    assert evaluation.rd_cost(0.5, 30.0, 0.01) == pytest.approx(0.5 + 0.01 * 65.025)
    assert evaluation.rd_cost(1.25, 40.0, 0.0) == pytest.approx(1.25)


def test_rd_cost_agrees_with_the_mse_of_two_images():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert evaluation.rd_cost(0.7, metrics.psnr(a, b), 0.013) == pytest.approx(0.7 + 0.013 * mse)


def test_coded_point_measures_the_file_and_its_decoding():
    image = np.full((8, 10, 3), 100, dtype=np.uint8)
    decoded = image + 2  # every sample off by 2: MSE 4
    codec = SizedCodec(decoded)
    data = codec.encode(image, 50)
    rate, quality, cost = evaluation.coded_point(data, image, codec.decode, 0.02)
    assert rate == pytest.approx(8 * 50 / 80)
    assert quality == pytest.approx(10 * np.log10(255**2 / 4))
    assert cost == pytest.approx(8 * 50 / 80 + 0.02 * 4)


def test_records_curve_is_the_mean_point_of_each_list():
    lists = [
        [{"bpp": 0.2, "other": 1.0, "psnr": 30.0}, {"bpp": 0.4, "other": 3.0, "psnr": 32.0}],
        [{"bpp": 1.0, "other": 5.0, "psnr": 40.0}, {"bpp": 2.0, "other": 7.0, "psnr": 38.0}],
    ]
    rates, qualities = evaluation.records_curve(lists)
    np.testing.assert_allclose(rates, [0.3, 1.5])
    np.testing.assert_allclose(qualities, [31.0, 39.0])
    np.testing.assert_allclose(evaluation.records_curve(lists, "other")[0], [2.0, 6.0])
    with pytest.raises(ValueError):
        evaluation.records_curve([])


@pytest.fixture(scope="module")
def small_model():
    torch = pytest.importorskip("torch")
    from nicbook.nn.models import FactorizedPrior

    torch.manual_seed(0)
    return FactorizedPrior(8, 8, name="tiny").eval()


def test_neural_records_measure_both_files_of_every_image(small_model, sample):
    import torch

    from nicbook import codec
    from nicbook.nn.tensors import to_tensor

    images = [sample[:32, :48], sample[100:148, 200:232]]
    records = evaluation.neural_records([small_model], images, ["a", "b"])
    assert list(records) == ["tiny"]
    for record, image in zip(records["tiny"], images):
        pixels = image.shape[0] * image.shape[1]
        fitted = codec.compress(image, small_model)
        static = codec.compress(image, small_model, adaptive=False)
        assert record["bytes"] == len(fitted)
        assert record["bpp"] == pytest.approx(8 * len(fitted) / pixels)
        assert record["static_bpp"] == pytest.approx(8 * len(static) / pixels)
        assert record["file_bits"] == 8 * len(static)
        assert record["payload_bits"] == 8 * codec.read_header(static).payload_length
        assert record["adaptive_payload_bits"] == 8 * codec.read_header(fitted).payload_length
        np.testing.assert_array_equal(record["decoded"], codec.decompress(fitted, small_model))
        np.testing.assert_array_equal(record["decoded"], codec.decompress(static, small_model))
        assert record["psnr"] == pytest.approx(metrics.psnr(image, record["decoded"]))
        assert record["symbols"].shape == (8, image.shape[0] // 16, image.shape[1] // 16)
        # the estimate is the rate of the model's own forward pass on rounded latents
        with torch.no_grad():
            bits = float(small_model(to_tensor(image)).bits)
        assert record["estimate_bits"] == pytest.approx(bits, rel=1e-4)
    assert [r["image"] for r in records["tiny"]] == ["a", "b"]


def test_neural_records_refuse_models_of_the_same_name_and_mismatched_names(small_model, sample):
    with pytest.raises(ValueError, match="named"):
        evaluation.neural_records([small_model, small_model], [sample[:16, :16]])
    with pytest.raises(ValueError, match="names"):
        evaluation.neural_records([small_model], [sample[:16, :16]], ["a", "b"])


def test_neural_records_of_a_hyperprior_split_its_file_into_side_information_and_latents(sample):
    import torch

    from nicbook import codec
    from nicbook.nn.models import MeanScaleHyperprior
    from nicbook.nn.tensors import to_tensor

    torch.manual_seed(0)
    model = MeanScaleHyperprior(8, 12).eval()
    model.name = "tiny-hyper"
    model.hyper_entropy_model.update_tables()
    image = sample[:64, :128]  # latents 4×8, hyper-latents 1×2
    record = evaluation.neural_records([model], [image])["tiny-hyper"][0]
    data = codec.compress(image, model)
    header = codec.read_header(data)
    assert record["bytes"] == len(data) and record["file_bits"] == 8 * len(data)
    assert record["bpp"] == record["static_bpp"] == pytest.approx(8 * len(data) / (64 * 128))
    np.testing.assert_array_equal(record["decoded"], codec.decompress(data, model))
    # the two streams fill the payload but for the side stream's length prefix (one byte here)
    assert record["side_bits"] + record["latent_bits"] + 8 == record["payload_bits"] == 8 * header.payload_length
    # the estimates are the model's own rate of the rounded latents, side information apart
    with torch.no_grad():
        output = model(to_tensor(image))
    assert record["side_estimate_bits"] == pytest.approx(float(output.side_bits), rel=1e-3)
    assert record["estimate_bits"] == pytest.approx(float(output.bits), rel=1e-3)
