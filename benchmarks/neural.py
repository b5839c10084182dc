"""Speed and rate accuracy of the neural codec (``nicbook.codec``) on this machine.

Measures, for a factorized-prior model of the given N/M (the shipped ``factorized-q4`` weights,
a ``--checkpoint``, or else a seeded random initialisation with fresh coding tables):

* encode and decode seconds of one Kodak image (the sample image without Kodak);
* actual payload bits against the model's estimate ``-Σ log2 P(ŷ)`` over ``--images`` images;
* seconds per training step (batch 8, 128×128 patches);
* the same timings for CompressAI's ``FactorizedPrior`` when ``compressai`` is importable,
  with nicbook/CompressAI ratios.

``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time

import numpy as np
import torch

from nicbook import codec, data, zoo
from nicbook.errors import DataNotFoundError
from nicbook.models import FactorizedPrior, rd_loss


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark_images(count: int) -> list[tuple[str, np.ndarray]]:
    if data.kodak_available():
        paths = data.kodak_paths()[:count]
        return [(path.name, data.load_image(path)) for path in paths]
    return [("grace_hopper", data.sample_image())]


def nicbook_model(args) -> tuple[FactorizedPrior, str]:
    if args.checkpoint:
        return zoo.load_checkpoint(args.checkpoint), f"checkpoint {args.checkpoint}"
    try:
        return zoo.load("factorized", 4), "shipped factorized-q4"
    except DataNotFoundError:
        torch.manual_seed(0)
        model = FactorizedPrior(args.N, args.M).eval()
        model.entropy_model.update_tables()
        return model, "random initialisation (no shipped weights)"


def training_seconds_per_step(model: torch.nn.Module, step, steps: int) -> float:
    torch.manual_seed(0)
    batch = torch.rand(8, 3, 128, 128)
    model.train()
    step(batch)  # warm-up
    seconds = median_seconds(lambda: step(batch), steps)
    model.eval()
    return seconds


def nicbook_figures(model: FactorizedPrior, images, args) -> dict:
    name, image = images[0]
    encoded = codec.compress(image, model)
    figures = {
        "image": name,
        "encode_s": median_seconds(lambda: codec.compress(image, model), args.repeats),
        "decode_s": median_seconds(lambda: codec.decompress(encoded, model), args.repeats),
    }
    actual = estimated = pixels = 0
    for _, picture in images:
        data_bytes = codec.compress(picture, model)
        header, symbols, _ = codec.decode_latents(data_bytes, model)
        actual += 8 * header.payload_length
        estimated += model.estimated_bits(symbols)
        pixels += picture.shape[0] * picture.shape[1]
    figures.update(
        images=len(images),
        payload_bpp=actual / pixels,
        estimated_bpp=estimated / pixels,
        actual_over_estimated=actual / estimated,
        size_target_met=actual <= 1.01 * estimated + 8 * 64 * len(images),  # 1.01 × estimate + 64 B/image
    )
    trainee = FactorizedPrior(model.N, model.M)
    optimizer = torch.optim.Adam(trainee.parameters(), lr=1e-4)

    def step(batch):
        optimizer.zero_grad()
        rd_loss(trainee(batch), batch, 0.013)["loss"].backward()
        optimizer.step()

    figures["train_s_per_step"] = training_seconds_per_step(trainee, step, args.train_steps)
    return figures


def compressai_figures(images, args) -> dict | None:
    if importlib.util.find_spec("compressai") is None:
        return None
    from compressai.models import FactorizedPrior as CompressAIFactorized

    torch.manual_seed(0)
    model = CompressAIFactorized(args.N, args.M).eval()
    model.update(force=True)
    _, image = images[0]
    padded = np.pad(image, ((0, -image.shape[0] % 64), (0, -image.shape[1] % 64), (0, 0)), mode="edge")
    x = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0).float() / 255
    with torch.no_grad():
        encoded = model.compress(x)
        figures = {
            "encode_s": median_seconds(lambda: model.compress(x), args.repeats),
            "decode_s": median_seconds(
                lambda: model.decompress(encoded["strings"], encoded["shape"]), args.repeats
            ),
        }
    trainee = CompressAIFactorized(args.N, args.M)
    optimizer = torch.optim.Adam(trainee.parameters(), lr=1e-4)

    def step(batch):
        optimizer.zero_grad()
        output = trainee(batch)
        bits = -torch.log2(output["likelihoods"]["y"]).sum()
        loss = bits / (8 * 128 * 128) + 0.013 * 255**2 * torch.mean((output["x_hat"] - batch) ** 2)
        (loss + trainee.aux_loss()).backward()
        optimizer.step()

    figures["train_s_per_step"] = training_seconds_per_step(trainee, step, args.train_steps)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="Kodak images for the rate comparison")
    parser.add_argument("--N", type=int, default=128)
    parser.add_argument("--M", type=int, default=192)
    parser.add_argument("--checkpoint", default=None, help="a training checkpoint to measure instead")
    parser.add_argument("--repeats", type=int, default=3, help="timing repetitions (median)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    images = benchmark_images(args.images)
    model, source = nicbook_model(args)
    result = {
        "model": source,
        "N": model.N,
        "M": model.M,
        "threads": torch.get_num_threads(),
        "nicbook": nicbook_figures(model, images, args),
    }
    peer = compressai_figures(images, args)
    result["compressai"] = peer if peer is not None else "absent (compressai is not installed)"
    if peer is not None:
        result["ratios_nicbook_over_compressai"] = {
            key: result["nicbook"][key] / peer[key]
            for key in ("encode_s", "decode_s", "train_s_per_step")
        }
    figures = result["nicbook"]
    print(f"model: {source}, N={model.N}, M={model.M}, {result['threads']} threads")
    print(f"{figures['image']}: encode {figures['encode_s']:.3f} s, decode {figures['decode_s']:.3f} s")
    print(
        f"payload {figures['payload_bpp']:.4f} bpp vs estimate {figures['estimated_bpp']:.4f} bpp "
        f"(ratio {figures['actual_over_estimated']:.4f}) over {figures['images']} images; "
        f"within 1.01 × estimate + 64 bytes per image: {figures['size_target_met']}"
    )
    print(f"training: {figures['train_s_per_step']:.3f} s/step (batch 8, 128×128)")
    print(f"CompressAI: {result['compressai']}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
