"""CompressAI's ``FactorizedPrior`` carrying the weights of a nicbook factorized model, for ``neural.py``.

The two models have the same layers (convolutions and GDNs) and the same density network, so
nicbook's state dict maps onto CompressAI's one tensor for one tensor. CompressAI's entropy
bottleneck learns its quantiles with an auxiliary loss; here they are set to the quantiles that
nicbook finds by bisection on the same density, so both code the same integer latents
``round(y - median)``, each with its own tables and entropy coder. Importing this module imports
compressai, which needs torchvision built for the installed torch (see ``neural.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch

with warnings.catch_warnings():  # compressai's import scripts modules with the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    import compressai
    from compressai.entropy_models import EntropyBottleneck
    from compressai.models import FactorizedPrior

from nicbook.nn.models import FactorizedPrior as NicbookFactorizedPrior

VERSION = f"compressai {compressai.__version__}, torch {torch.__version__}"
#: nicbook's module prefixes and CompressAI's for the same layers.
PREFIXES = {"analysis.": "g_a.", "synthesis.": "g_s.", "entropy_model.density.": "entropy_bottleneck."}


def from_nicbook(model: NicbookFactorizedPrior) -> FactorizedPrior:
    """CompressAI's model with ``model``'s weights and quantiles, its tables built, in eval mode."""
    entropy_model = model.entropy_model
    peer = FactorizedPrior(model.N, model.M)
    filters = tuple(matrix.shape[1] for matrix in entropy_model.density.matrices[:-1])
    peer.entropy_bottleneck = EntropyBottleneck(model.M, tail_mass=entropy_model.tail_mass, filters=filters)
    target = peer.state_dict()
    mapped = set()
    for name, tensor in model.state_dict().items():
        prefix = next((prefix for prefix in PREFIXES if name.startswith(prefix)), None)
        if prefix is not None:
            peer_name = PREFIXES[prefix] + name[len(prefix) :]
            target[peer_name].copy_(tensor)
            mapped.add(peer_name)
    unmapped = {name for name, _ in peer.named_parameters()} - mapped - {"entropy_bottleneck.quantiles"}
    if unmapped:
        raise ValueError(f"nicbook's state dict leaves CompressAI's {sorted(unmapped)} unset")
    tail = entropy_model.tail_mass
    with torch.no_grad():
        quantiles = entropy_model.density.quantiles([tail / 2, 0.5, 1 - tail / 2])
        peer.entropy_bottleneck.quantiles[:, 0, :] = quantiles.float()
        peer.entropy_bottleneck.quantiles[:, 0, 1] = entropy_model.medians
    peer.eval()
    peer.update(force=True)
    return peer


@torch.no_grad()
def encode(peer: FactorizedPrior, image: np.ndarray) -> dict:
    """An ``(H, W, 3)`` uint8 image, padded like nicbook's (edges repeated to multiples of 16), to
    CompressAI's ``compress`` output (``strings`` and the latents' ``shape``) and the image ``size``."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((0, -height % 16), (0, -width % 16), (0, 0)), mode="edge")
    x = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    return {**peer.compress(x), "size": (height, width)}


@torch.no_grad()
def decode(peer: FactorizedPrior, encoded: dict) -> np.ndarray:
    """:func:`encode`'s output back to an ``(H, W, 3)`` uint8 image."""
    x_hat = peer.decompress(encoded["strings"], encoded["shape"])["x_hat"]  # clamped to [0, 1]
    height, width = encoded["size"]
    return (x_hat[0, :, :height, :width] * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


@torch.no_grad()
def latent_symbols(peer: FactorizedPrior, encoded: dict) -> np.ndarray:
    """The integer latents ``(M, h, w)`` the stream holds, ``round(y - median)`` as nicbook counts them."""
    bottleneck = peer.entropy_bottleneck
    y_hat = bottleneck.decompress(encoded["strings"][0], encoded["shape"])[0]
    return torch.round(y_hat - bottleneck.quantiles[:, 0, 1].reshape(-1, 1, 1)).to(torch.int64).numpy()


def payload_bytes(encoded: dict) -> int:
    return sum(len(string) for strings in encoded["strings"] for string in strings)


def training_step(peer: FactorizedPrior, lmbda: float) -> Callable[[torch.Tensor], None]:
    """One step of CompressAI's recipe (its ``examples/train.py``, without gradient clipping) on
    ``peer``, put in train mode: ``bpp + λ·255²·MSE`` with Adam, and the auxiliary loss that
    fits the quantiles with a second Adam."""
    peer.train()
    main = [p for name, p in peer.named_parameters() if not name.endswith("quantiles")]
    optimizer = torch.optim.Adam(main, lr=1e-4)
    aux_optimizer = torch.optim.Adam([peer.entropy_bottleneck.quantiles], lr=1e-3)

    def step(batch: torch.Tensor) -> None:
        optimizer.zero_grad()
        aux_optimizer.zero_grad()
        output = peer(batch)
        pixels = batch.shape[0] * batch.shape[2] * batch.shape[3]
        bpp = -torch.log2(output["likelihoods"]["y"]).sum() / pixels
        (bpp + lmbda * 255**2 * torch.mean((output["x_hat"] - batch) ** 2)).backward()
        optimizer.step()
        peer.aux_loss().backward()
        aux_optimizer.step()

    return step
