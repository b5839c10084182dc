"""Hyperprior .nic files (version 7): round trips, exact decoding across threads and precisions, bad files."""

from __future__ import annotations

import copy
import json
import struct
import zlib

import numpy as np
import pytest
import torch

from nicbook import cli, codec
from nicbook.codec.hyperprior import side_shape
from nicbook.errors import BitstreamError, NicbookError
from nicbook.metrics import psnr
from nicbook.nn.checkpoints import save_checkpoint
from nicbook.nn.models import FactorizedPrior, MeanScaleHyperprior, ScaleHyperprior
from nicbook.nn.tiling import TILE


def _model(kind, seed: int = 0, N: int = 8, M: int = 12):
    """An untrained hyperprior whose scales spread over many tables and whose synthesis roughly
    inverts its analysis (so reconstructions resemble the input)."""
    torch.manual_seed(seed)
    model = kind(N, M).eval()
    with torch.no_grad():
        last = model.hyper_synthesis[-1]
        last.bias[:M].uniform_(0.2, 6.0)
        last.weight[:M].mul_(4.0)
    model.hyper_entropy_model.update_tables()
    return model


@pytest.fixture(scope="module", params=[ScaleHyperprior, MeanScaleHyperprior], ids=["scale", "mean-scale"])
def model(request):
    return _model(request.param)


@pytest.fixture(scope="module")
def image(sample) -> np.ndarray:
    return sample[60:220, 100:290].copy()  # 160×190: latents 10×12, hyper-latents 3×3


@pytest.fixture(scope="module")
def encoded(model, image) -> bytes:
    return codec.compress(image, model)


def test_files_are_version_7_and_decode_to_the_encoders_symbols(model, image, encoded):
    header, latents, _ = codec.decode_latents(encoded, model)
    assert header.version == codec.HYPERPRIOR_VERSION
    assert latents.symbols.shape == (model.M, 10, 12)
    assert latents.side_symbols.shape == side_shape(model, latents.symbols.shape) == (model.N, 3, 3)
    assert len(np.unique(latents.table_indices)) > 3  # the side information really chooses tables
    assert latents.side_bytes + latents.latent_bytes < header.payload_length
    # The encoder's own symbols, recomputed from the same latents, are what the file holds.
    x = torch.from_numpy(codec.pad_to_stride(image)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = model.analysis(x)
    _, expected = codec.hyperprior.encode(model, y)
    assert np.array_equal(expected.symbols, latents.symbols)
    assert np.array_equal(expected.side_symbols, latents.side_symbols)


def test_reconstruction_is_the_synthesis_of_the_decoded_latents(model, image, encoded):
    decoded = codec.decompress(encoded, model, exact=True)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    fast = codec.decompress(encoded, model)  # float32: a value may move by one level
    assert np.abs(fast.astype(int) - decoded).max() <= 1 and np.mean(fast != decoded) <= 1e-3
    header, latents, _ = codec.decode_latents(encoded, model)
    with torch.no_grad():
        reference = copy.deepcopy(model.synthesis).double()(latents.latents()[None])[0]
    expected = (reference.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()[: image.shape[0], : image.shape[1]]
    assert np.array_equal(decoded, expected)


def test_decoding_is_exact_across_threads_and_weight_precision(model, encoded):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _, one, _ = codec.decode_latents(encoded, model)
        torch.set_num_threads(2)
        _, two, _ = codec.decode_latents(encoded, model)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(one.symbols, two.symbols) and np.array_equal(one.table_indices, two.table_indices)
    if one.means is not None:
        assert torch.equal(one.means, two.means)
    # Table indices come from integers: the model's float64 twin picks the same ones. (Its weights
    # hash differs, so the codec would refuse it as a different model: compare the stage itself.)
    twin = _model(type(model)).double()
    indices, means = codec.hyperprior.gaussian_parameters(twin, one.side_symbols, one.symbols.shape)
    assert np.array_equal(indices, one.table_indices)
    assert (means is None) == (one.means is None) and (means is None or torch.equal(means, one.means))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_decoding_on_a_gpu_gives_the_same_latents(model, encoded):
    _, on_cpu, _ = codec.decode_latents(encoded, model)
    gpu_model = _model(type(model)).cuda()
    _, on_gpu, _ = codec.decode_latents(encoded, gpu_model)
    assert np.array_equal(on_cpu.symbols, on_gpu.symbols)


def test_truncated_and_altered_files_are_refused(model, encoded):
    with pytest.raises(BitstreamError):
        codec.decompress(encoded[:-7], model)
    header = codec.read_header(encoded)
    body = bytearray(encoded[:-4])
    for offset in (header.payload_offset + 1, header.payload_offset + header.payload_length // 2):
        mutated = bytearray(body)
        mutated[offset] ^= 0x5A
        forged = bytes(mutated) + struct.pack(">I", zlib.crc32(bytes(mutated)))
        try:
            codec.decompress(forged, model)  # a mutant may still decode to another image
        except BitstreamError:
            pass
    cut = bytes(body[: header.payload_offset + 3])
    forged = bytearray(cut)
    forged[header.payload_offset - 4 : header.payload_offset] = struct.pack(">I", 3)
    with pytest.raises(BitstreamError):
        codec.decompress(bytes(forged) + struct.pack(">I", zlib.crc32(bytes(forged))), model)


def test_a_hyperprior_file_needs_a_hyperprior_model(encoded, tiny_model):
    with pytest.raises(BitstreamError):
        codec.decompress(encoded, tiny_model(M=12))
    factorized_file = codec.compress(np.zeros((32, 32, 3), np.uint8), tiny_model(M=12))
    with pytest.raises(BitstreamError):
        codec.decompress(factorized_file, _model(ScaleHyperprior))


def test_zero_refinement_steps_give_the_plain_file(model, image, encoded):
    """For both architectures (the shipped weights' search is tested in tests/codec/test_refinement.py)."""
    assert codec.compress(image, model, refinement=codec.LatentRefinement(0.01, 0)) == encoded


def test_refining_a_two_tile_image_searches_both_tiles(model, sample):
    """Latents and hyper-latents are refined tile by tile (the shipped models' gain is tested in
    tests/codec/test_refinement.py); the file decodes, and each tile's symbols moved."""
    image = np.ascontiguousarray(np.concatenate([sample[:64], sample[64:128, :150]], axis=1))  # 64×918
    refined = codec.compress(image, model, refinement=codec.LatentRefinement(0.01, 4, 0.3))
    _, latents, _ = codec.decode_latents(refined, model)
    _, plain, _ = codec.decode_latents(codec.compress(image, model), model)
    assert latents.symbols.shape[-1] == 58 > TILE
    for columns in (slice(0, TILE), slice(TILE, None)):
        assert not np.array_equal(latents.symbols[..., columns], plain.symbols[..., columns])
    assert codec.decompress(refined, model).shape == image.shape


def test_command_line_round_trip_and_info(tmp_path, sample, capsys):
    model = _model(MeanScaleHyperprior)
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, model)
    source, nic, png = tmp_path / "in.png", tmp_path / "out.nic", tmp_path / "out.png"
    from nicbook.data import load_image, save_image

    save_image(sample[:96, :128], source)
    assert cli.main(["encode", str(source), str(nic), "--checkpoint", str(checkpoint)]) == 0
    assert cli.main(["decode", str(nic), str(png), "--checkpoint", str(checkpoint)]) == 0
    assert load_image(png).shape == (96, 128, 3)
    capsys.readouterr()
    assert cli.main(["info", str(nic), "--checkpoint", str(checkpoint)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == 7
    assert info["side_bytes"] + info["latent_bytes"] < info["payload_bytes"]
    assert info["estimated_bits"] == pytest.approx(info["estimated_side_bits"] + info["estimated_latent_bits"], abs=0.2)
    # The integer tables' cost of the latents is what their rANS stream takes, within its framing.
    assert info["estimated_latent_bits"] / 8 == pytest.approx(info["latent_bytes"], rel=0.05, abs=16)


def test_a_trained_factorized_model_warm_starts_a_hyperprior(tmp_path, tiny_model):
    from nicbook.nn.checkpoints import load_transforms

    factorized = tiny_model(seed=3, N=8, M=12)
    source = tmp_path / "factorized.pt"
    save_checkpoint(source, factorized)
    hyperprior = MeanScaleHyperprior(8, 12)
    before = hyperprior.hyper_synthesis[0].weight.clone()
    load_transforms(source, hyperprior)
    for name, tensor in factorized.state_dict().items():
        if name.startswith(("analysis.", "synthesis.")):
            assert torch.equal(hyperprior.state_dict()[name], tensor)
    assert torch.equal(hyperprior.hyper_synthesis[0].weight, before)
    with pytest.raises(NicbookError, match="N=8, M=12"):
        load_transforms(source, MeanScaleHyperprior(8, 16))
    assert isinstance(factorized, FactorizedPrior)


def test_untrained_decoder_still_reconstructs_roughly(image):
    """A sanity floor: even untrained, the decoded image keeps some of the picture (not zeros)."""
    model = _model(ScaleHyperprior)
    decoded = codec.decompress(codec.compress(image, model), model)
    assert psnr(image, decoded) > psnr(image, np.zeros_like(image))
