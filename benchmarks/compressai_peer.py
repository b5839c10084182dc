"""CompressAI's ``FactorizedPrior`` timed the way ``neural.py`` times nicbook's codec.

``neural.py`` imports this module when ``compressai`` is importable beside nicbook, and otherwise
runs it as a script with the interpreter given by ``--peer-python`` (CompressAI needs its own
environment: torch 2.14.1 with torchvision). As a script it reads an RGB image saved with
``numpy.save`` and prints one JSON object. It needs torch, numpy and compressai, not nicbook.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from timing import median_seconds, training_seconds_per_step


def compressai_figures(image: np.ndarray, N: int, M: int, repeats: int, train_steps: int) -> dict:
    """Encode and decode seconds of ``image`` (uint8 RGB) and training seconds per step, untrained weights."""
    import compressai
    from compressai.models import FactorizedPrior

    torch.manual_seed(0)
    model = FactorizedPrior(N, M).eval()
    model.update(force=True)
    padded = np.pad(image, ((0, -image.shape[0] % 64), (0, -image.shape[1] % 64), (0, 0)), mode="edge")
    x = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0).float() / 255
    with torch.no_grad():
        encoded = model.compress(x)
        figures = {
            "version": f"compressai {compressai.__version__}, torch {torch.__version__}",
            "encode_s": median_seconds(lambda: model.compress(x), repeats),
            "decode_s": median_seconds(
                lambda: model.decompress(encoded["strings"], encoded["shape"]), repeats
            ),
        }
    trainee = FactorizedPrior(N, M)
    optimizer = torch.optim.Adam(trainee.parameters(), lr=1e-4)

    def step(batch):
        optimizer.zero_grad()
        output = trainee(batch)
        bits = -torch.log2(output["likelihoods"]["y"]).sum()
        loss = bits / (8 * 128 * 128) + 0.013 * 255**2 * torch.mean((output["x_hat"] - batch) ** 2)
        (loss + trainee.aux_loss()).backward()
        optimizer.step()

    figures["train_s_per_step"] = training_seconds_per_step(trainee, step, train_steps)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="an RGB uint8 image saved with numpy.save")
    parser.add_argument("--N", type=int, default=128)
    parser.add_argument("--M", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    image = np.load(args.image)
    print(json.dumps(compressai_figures(image, args.N, args.M, args.repeats, args.train_steps)))


if __name__ == "__main__":
    main()
