"""Speed and rate accuracy of the neural codec (``nicbook.codec``) on this machine.

Measures, for a factorized-prior model of the given N/M (the shipped ``factorized-q4`` weights,
a ``--checkpoint``, or else a seeded random initialisation with fresh coding tables):

* encode and decode seconds of one Kodak image (the sample image without Kodak);
* actual payload bits with the model's own tables (``adaptive=False``) against the model's estimate
  ``-Σ log2 P(ŷ)`` over ``--images`` images, and the payload with per-image scales (the default);
* seconds per training step (batch 8, 128×128 patches);
* the same timings for CompressAI's ``FactorizedPrior`` (same N/M, untrained: speed does not depend
  on the weights), with nicbook/CompressAI ratios, when ``compressai`` is importable here or in the
  environment of ``--peer-python`` (CompressAI needs torch 2.14.1 with torchvision; see
  ``compressai_peer.py``).

``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from nicbook import codec, data, zoo
from nicbook.errors import DataNotFoundError
from nicbook.nn.models import FactorizedPrior, rd_loss
from timing import median_seconds, training_seconds_per_step


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


def nicbook_figures(model: FactorizedPrior, images, args) -> dict:
    name, image = images[0]
    encoded = codec.compress(image, model)
    figures = {
        "image": name,
        "encode_s": median_seconds(lambda: codec.compress(image, model), args.repeats),
        "decode_s": median_seconds(lambda: codec.decompress(encoded, model), args.repeats),
    }
    actual = estimated = adaptive = pixels = 0
    for _, picture in images:
        data_bytes = codec.compress(picture, model, adaptive=False)
        header, symbols, _ = codec.decode_latents(data_bytes, model)
        actual += 8 * header.payload_length
        estimated += float(model.entropy_model.channel_bits(symbols).sum())
        adaptive += 8 * codec.read_header(codec.compress(picture, model)).payload_length
        pixels += picture.shape[0] * picture.shape[1]
    figures.update(
        images=len(images),
        payload_bpp=actual / pixels,
        adaptive_payload_bpp=adaptive / pixels,
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


def peer_figures(images, N: int, M: int, args) -> dict | str:
    """CompressAI's timings for the same N/M: in this process when it imports here, else through ``--peer-python``."""
    _, image = images[0]
    if importlib.util.find_spec("compressai") is not None:
        from compressai_peer import compressai_figures

        return compressai_figures(image, N, M, args.repeats, args.train_steps)
    if not args.peer_python:
        return "absent (compressai is not installed; see --peer-python)"
    with tempfile.TemporaryDirectory() as folder:
        image_path = Path(folder) / "image.npy"
        np.save(image_path, image)
        command = [
            args.peer_python, str(Path(__file__).with_name("compressai_peer.py")), str(image_path),
            "--N", str(N), "--M", str(M), "--repeats", str(args.repeats),
            "--train-steps", str(args.train_steps), "--threads", str(torch.get_num_threads()),
        ]
        finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        last_line = (finished.stderr.strip().splitlines() or ["no message"])[-1]
        return f"failed ({args.peer_python}: {last_line})"
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="Kodak images for the rate comparison")
    parser.add_argument("--N", type=int, default=128)
    parser.add_argument("--M", type=int, default=192)
    parser.add_argument("--checkpoint", default=None, help="a training checkpoint to measure instead")
    parser.add_argument("--repeats", type=int, default=3, help="timing repetitions (median)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--peer-python", default=None,
        help="a Python with compressai installed, for the peer's timings when it does not import here",
    )
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
    peer = peer_figures(images, model.N, model.M, args)
    result["compressai"] = peer
    if isinstance(peer, dict):
        result["ratios_nicbook_over_compressai"] = {
            key: result["nicbook"][key] / peer[key] for key in ("encode_s", "decode_s", "train_s_per_step")
        }
        result["ratios_nicbook_over_compressai"]["encode_plus_decode_s"] = (
            result["nicbook"]["encode_s"] + result["nicbook"]["decode_s"]
        ) / (peer["encode_s"] + peer["decode_s"])
    figures = result["nicbook"]
    print(f"model: {source}, N={model.N}, M={model.M}, {result['threads']} threads")
    print(f"{figures['image']}: encode {figures['encode_s']:.3f} s, decode {figures['decode_s']:.3f} s")
    print(
        f"payload {figures['payload_bpp']:.4f} bpp vs estimate {figures['estimated_bpp']:.4f} bpp "
        f"(ratio {figures['actual_over_estimated']:.4f}) over {figures['images']} images; "
        f"within 1.01 × estimate + 64 bytes per image: {figures['size_target_met']}"
    )
    print(
        f"payload with per-image scales (the default): {figures['adaptive_payload_bpp']:.4f} bpp, "
        f"{100 * (1 - figures['adaptive_payload_bpp'] / figures['payload_bpp']):.2f} % below the model's tables"
    )
    print(f"training: {figures['train_s_per_step']:.3f} s/step (batch 8, 128×128)")
    if isinstance(peer, dict):
        ratios = result["ratios_nicbook_over_compressai"]
        print(
            f"CompressAI ({peer['version']}): encode {peer['encode_s']:.3f} s, decode {peer['decode_s']:.3f} s, "
            f"training {peer['train_s_per_step']:.3f} s/step"
        )
        print(
            "nicbook / CompressAI: "
            + ", ".join(f"{key} {value:.2f}" for key, value in ratios.items())
            + " (below 1: nicbook faster)"
        )
    else:
        print(f"CompressAI: {peer}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
