"""Speed, memory and rate of nicbook's neural codec against CompressAI's, both given nicbook's weights.

For each shipped factorized model of ``--qualities``, on the first ``--images`` Kodak images (the
sample image without Kodak):

* rate: nicbook's payload with the model's own tables (``adaptive=False``) against the model's
  estimate ``-Σ log2 P(ŷ)``, and with per-image scales (the default);
* CompressAI's ``FactorizedPrior`` carrying the same weights and quantiles (``compressai_peer.py``):
  whether its stream holds exactly nicbook's integer latents, its payload, and both decoded PSNRs;
* seconds to encode (image → bytes) and decode (bytes → image) each image, and per training step
  (batch 8 of 128×128 patches, Adam, each library's own rate proxy): medians of ``--repeats`` (at
  least 5) runs, nicbook's and CompressAI's calls alternating (``timing.alternate``), so that the
  load of the machine weighs on both alike;
* peak memory of each operation: how much one call (after a warm-up call on a 16×16 input) raises
  the peak resident set of a fresh process that has loaded both models and the inputs;
* the ratios nicbook / CompressAI of all of these (below 1: nicbook faster or smaller).

Where ``compressai`` does not import, only nicbook's figures are measured and the output says why
CompressAI was skipped. CompressAI 1.2.8 needs torchvision, and torchvision must be the build made
for the installed torch (a mismatched pair fails with ``operator torchvision::nms does not
exist``), so give it an environment of its own with a matched pair, nicbook installed beside it::

    python3 -m venv compressai-env
    compressai-env/bin/pip install torch==2.14.1 torchvision==0.29.1
    compressai-env/bin/pip install compressai
    compressai-env/bin/pip install -e .          # nicbook, from the repository root
    compressai-env/bin/python benchmarks/neural.py --images 4 --qualities 2 6 --json

``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import functools
import gc
import json
import multiprocessing
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from nicbook import codec, data, zoo
from nicbook.metrics import psnr
from nicbook.nn.models import rd_loss
from timing import alternate, alternate_training, training_batch

SIDES = ("nicbook", "compressai")
OPERATIONS = ("encode", "decode", "train_step")
#: The figures given as ratios nicbook / CompressAI.
COMPARED = (
    "encode_s", "decode_s", "train_step_s", "encode_peak_bytes", "decode_peak_bytes", "train_step_peak_bytes", "payload_bpp"
)  # fmt: skip
#: Side of the input that warms each operation up before its memory is measured.
WARM_UP_SIDE = 16


def import_peer() -> tuple[ModuleType | None, str]:
    """``compressai_peer`` and CompressAI's version, or None and why it does not import."""
    try:
        import compressai_peer
    except Exception as error:  # ImportError, or the RuntimeError of a torchvision built for another torch
        return None, f"{type(error).__name__}: {error}"
    return compressai_peer, compressai_peer.VERSION


def benchmark_images(count: int) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` Kodak images and their names, or the sample image without Kodak."""
    if data.kodak_available():
        return [(path.name, data.load_image(path)) for path in data.kodak_paths()[:count]]
    return [(data.SAMPLE_NAME, data.sample_image())]


class Sides:
    """The shipped model of ``quality`` and, with ``peer``, CompressAI's model carrying its weights;
    their coders and training steps under the names of :data:`SIDES`."""

    def __init__(self, quality: int, peer: ModuleType | None) -> None:
        self.model = zoo.load("factorized", quality)
        self.lmbda = zoo.configuration("factorized", quality)["lmbda"]
        self.peer = peer
        self.peer_model = peer.from_nicbook(self.model) if peer else None
        self.names = SIDES if peer else SIDES[:1]

    def encoders(self) -> dict[str, Callable[[np.ndarray], object]]:
        encoders = {"nicbook": functools.partial(codec.compress, model=self.model)}
        if self.peer:
            encoders["compressai"] = functools.partial(self.peer.encode, self.peer_model)
        return encoders

    def decoders(self) -> dict[str, Callable[[object], np.ndarray]]:
        decoders = {"nicbook": functools.partial(codec.decompress, model=self.model)}
        if self.peer:
            decoders["compressai"] = functools.partial(self.peer.decode, self.peer_model)
        return decoders

    def training_steps(self) -> dict[str, Callable[[torch.Tensor], None]]:
        """A training step per side, on copies of the models (nicbook's with its own ``mixed``
        rounding proxy, whose medians it finds by bisection at every step)."""
        trainee = copy.deepcopy(self.model).train()
        optimizer = torch.optim.Adam(trainee.parameters(), lr=1e-4)

        def nicbook_step(batch: torch.Tensor) -> None:
            optimizer.zero_grad()
            rd_loss(trainee(batch), batch, self.lmbda)["loss"].backward()
            optimizer.step()

        steps = {"nicbook": nicbook_step}
        if self.peer:
            steps["compressai"] = self.peer.training_step(copy.deepcopy(self.peer_model), self.lmbda)
        return steps


def rate_figures(sides: Sides, images: list[tuple[str, np.ndarray]], streams: list[dict]) -> dict:
    """Payloads, the model's estimate, PSNRs and the comparison of the two streams' integer latents."""
    model, pixels = sides.model, sum(image.shape[0] * image.shape[1] for _, image in images)
    static = estimated = payload = peer_payload = differing = 0
    psnrs: dict[str, list[float]] = {name: [] for name in sides.names}
    decoders = sides.decoders()
    for (_, image), stream in zip(images, streams):
        static_header, symbols, _ = codec.decode_latents(codec.compress(image, model, adaptive=False), model)
        static += 8 * static_header.payload_length
        estimated += float(model.entropy_model.channel_bits(symbols).sum())
        header, default_symbols, _ = codec.decode_latents(stream["nicbook"], model)
        payload += 8 * header.payload_length
        for name, decode in decoders.items():
            psnrs[name].append(psnr(image, decode(stream[name])))
        if sides.peer:
            peer_payload += 8 * sides.peer.payload_bytes(stream["compressai"])
            peer_symbols = sides.peer.latent_symbols(sides.peer_model, stream["compressai"])
            differing += int(np.count_nonzero(peer_symbols != default_symbols))
    figures = {
        "nicbook": {
            "payload_bpp": payload / pixels,
            "static_payload_bpp": static / pixels,
            "estimated_bpp": estimated / pixels,
            "static_over_estimated": static / estimated,
            "size_target_met": static <= 1.01 * estimated + 8 * 64 * len(images),  # 1.01 × estimate + 64 B/image
            "psnr": float(np.mean(psnrs["nicbook"])),
        }
    }
    if sides.peer:
        figures["compressai"] = {"payload_bpp": peer_payload / pixels, "psnr": float(np.mean(psnrs["compressai"]))}
        figures["latents_identical"] = differing == 0
        figures["latents_differing"] = differing
    return figures


def timings(
    sides: Sides, images: list[tuple[str, np.ndarray]], streams: list[dict], repeats: int
) -> dict[str, dict[str, float]]:
    """Median seconds per image of encoding and decoding, and per training step, for each side,
    the sides' calls alternating (image by image for the coders)."""
    encoders, decoders, functions = sides.encoders(), sides.decoders(), {}
    for index, ((_, image), stream) in enumerate(zip(images, streams)):
        for name, encode in encoders.items():
            functions[f"{name} encode {index}"] = functools.partial(encode, image)
        for name, decode in decoders.items():
            functions[f"{name} decode {index}"] = functools.partial(decode, stream[name])
    medians = alternate(functions, repeats)
    steps = alternate_training(sides.training_steps(), repeats)
    count = len(images)
    return {
        name: {
            "encode_s": sum(medians[f"{name} encode {index}"] for index in range(count)) / count,
            "decode_s": sum(medians[f"{name} decode {index}"] for index in range(count)) / count,
            "train_step_s": steps[name],
        }
        for name in sides.names
    }


def peak_rss_bytes() -> int:
    """The peak resident set of this process: ``VmHWM`` on Linux (whose ``ru_maxrss`` also counts the
    memory of the parent that forked this process), else ``ru_maxrss`` (in bytes on macOS, KiB elsewhere)."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return 1024 * int(line.split()[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else 1024 * peak


def reset_peak_rss() -> None:
    """Hand the C heap's free pages back to the system (glibc), so that the resident set counts only
    memory in use, and restart the peak from it (Linux; elsewhere the peak runs from the process start)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def operation_peak_bytes(
    quality: int, name: str, operation: str, image: np.ndarray, stream: dict, threads: int
) -> int:
    """Bytes by which one ``operation`` of side ``name`` (on ``image``, or decoding its ``stream``)
    raises the peak resident set of this process, meant to be a fresh one: both sides' models,
    training copies and inputs are loaded first, and the operation warmed up on a 16×16 input."""
    torch.set_num_threads(threads)
    sides = Sides(quality, import_peer()[0])
    small = image[:WARM_UP_SIDE, :WARM_UP_SIDE]
    encoders, decoders, steps = sides.encoders(), sides.decoders(), sides.training_steps()
    small_streams = {side: encode(small) for side, encode in encoders.items()}
    batch = training_batch()
    warm_up, run = {
        "encode": (lambda: encoders[name](small), lambda: encoders[name](image)),
        "decode": (lambda: decoders[name](small_streams[name]), lambda: decoders[name](stream[name])),
        "train_step": (lambda: steps[name](batch[:1, :, :WARM_UP_SIDE, :WARM_UP_SIDE]), lambda: steps[name](batch)),
    }[operation]
    warm_up()
    gc.collect()
    reset_peak_rss()
    before = peak_rss_bytes()
    run()
    return peak_rss_bytes() - before


def peak_memory(
    quality: int, names: tuple[str, ...], image: np.ndarray, stream: dict
) -> dict[str, dict[str, int]]:
    """:func:`operation_peak_bytes` of every operation of every side, each in a fresh process."""
    context = multiprocessing.get_context("spawn")
    peaks: dict[str, dict[str, int]] = {name: {} for name in names}
    for operation in OPERATIONS:
        for name in names:
            with context.Pool(1) as pool:
                peaks[name][f"{operation}_peak_bytes"] = pool.apply(
                    operation_peak_bytes, (quality, name, operation, image, stream, torch.get_num_threads())
                )
    return peaks


def measure(quality: int, images: list[tuple[str, np.ndarray]], peer: ModuleType | None, repeats: int) -> dict:
    """Every figure of the shipped model of ``quality``, with the ratios nicbook / CompressAI."""
    sides = Sides(quality, peer)
    encoders = sides.encoders()
    streams = [{name: encode(image) for name, encode in encoders.items()} for _, image in images]
    result = {"quality": quality, "lmbda": sides.lmbda, **rate_figures(sides, images, streams)}
    seconds = timings(sides, images, streams, repeats)
    peaks = peak_memory(quality, sides.names, images[0][1], streams[0])
    for name in sides.names:
        result[name].update(seconds[name], **peaks[name])
    if peer:
        result["ratios_nicbook_over_compressai"] = {
            key: result["nicbook"][key] / result["compressai"][key] for key in COMPARED
        }
    return result


def report(result: dict) -> None:
    """The figures of one quality as text."""
    ours = result["nicbook"]
    print(
        f"factorized-q{result['quality']}: nicbook payload {ours['payload_bpp']:.4f} bpp (own tables "
        f"{ours['static_payload_bpp']:.4f}, {ours['static_over_estimated']:.4f} × the estimate "
        f"{ours['estimated_bpp']:.4f}; within 1.01 × estimate + 64 B per image: {ours['size_target_met']}), "
        f"PSNR {ours['psnr']:.4f} dB"
    )
    if "compressai" in result:
        theirs = result["compressai"]
        print(
            f"  CompressAI payload {theirs['payload_bpp']:.4f} bpp, PSNR {theirs['psnr']:.4f} dB; "
            f"integer latents identical: {result['latents_identical']} ({result['latents_differing']} differ)"
        )
    for name in SIDES:
        if name in result:
            figures = result[name]
            print(
                f"  {name:10s} encode {figures['encode_s']:.3f} s, decode {figures['decode_s']:.3f} s, "
                f"training {figures['train_step_s']:.3f} s/step; peak memory encode "
                f"{figures['encode_peak_bytes'] / 2**20:.0f} MiB, decode "
                f"{figures['decode_peak_bytes'] / 2**20:.0f} MiB, training step "
                f"{figures['train_step_peak_bytes'] / 2**20:.0f} MiB"
            )
    if "ratios_nicbook_over_compressai" in result:
        ratios = result["ratios_nicbook_over_compressai"]
        print("  nicbook / CompressAI: " + ", ".join(f"{key} {value:.2f}" for key, value in ratios.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="Kodak images to code")
    parser.add_argument("--qualities", type=int, nargs="+", default=[2, 4, 6], help="shipped factorized models")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each operation (median; at least 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")
    if args.threads:
        torch.set_num_threads(args.threads)

    peer, version = import_peer()
    images = benchmark_images(args.images)
    peer_line = (
        f"CompressAI: {version}" if peer else
        f"CompressAI skipped: it does not import here ({version}); see the top of benchmarks/neural.py"
    )  # fmt: skip
    print(f"{len(images)} images, {torch.get_num_threads()} threads, medians of {args.repeats} runs; {peer_line}")
    results = []
    for quality in args.qualities:
        results.append(measure(quality, images, peer, args.repeats))
        report(results[-1])
    if args.json:
        print(json.dumps({
            "benchmark": "neural",
            "images": [name for name, _ in images],
            "threads": torch.get_num_threads(),
            "repeats": args.repeats,
            "compressai": version if peer else f"skipped: {version}",
            "qualities": results,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
