"""``.nic`` files: an image through a trained model into bytes, and back.

Encoding walks down the book's steps, one module each:

1. :mod:`nicbook.data` makes any image ``H×W×3 uint8``; it is padded to a multiple of 16 by
   repeating its edges and becomes a tensor (:mod:`nicbook.nn.tensors`);
2. the analysis transform of the model (:mod:`nicbook.nn.models`), run tile by tile
   (:mod:`nicbook.nn.tiling`), gives the latents, which :mod:`nicbook.codec.refinement` may
   improve for this image;
3. the entropy model rounds them to integer symbols (:mod:`nicbook.nn.entropy_models`);
4. :mod:`nicbook.codec.adaptive` (per-image scales, the default) or :mod:`nicbook.codec.latents`
   (the model's own tables) code them with rANS (:mod:`nicbook.entropy`); a hyperprior model
   sends side information and codes each latent with the table it picks
   (:mod:`nicbook.codec.hyperprior`);
5. :mod:`nicbook.codec.container` wraps the payload in a checked header.

Decoding goes back up the same steps: :func:`decode_latents` then :func:`reconstruct`.

Determinism: the payload depends only on the integer latents and the integer tables, and the
decoder recovers those integers exactly on any machine, thread count and device. The synthesis
transform, which turns them into pixels, runs in float32 by default (:data:`FAST_DTYPE`), as fast
as the models train: another thread count or device may then round a few pixel values
differently, by one level at most (measured on Kodak: about 10 of 1.2 million values between one
and two threads). ``exact=True`` runs it in float64 (:data:`EXACT_DTYPE`), about twice as slow,
and the decoded image is then the same for any thread count, with differences between CPUs far
below the final rounding to uint8 (exact reconstruction on every platform would need integer
networks). The encoder's analysis runs in float32: a latent lying within rounding error of a
half-integer may round differently on other hardware or thread counts, which yields another
valid file, never one that decodes differently.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from nicbook import zoo
from nicbook.codec import adaptive as adaptive_coding
from nicbook.codec import hyperprior, latents
from nicbook.codec.container import (
    FORMAT_VERSION,
    HYPERPRIOR_VERSION,
    MAGIC,
    MAX_PIXELS,
    PAYLOADS,
    READABLE_VERSIONS,
    STATIC_VERSION,
    NicHeader,
    check_image_size,
    latent_size,
    pack,
    read_header,
    weights_hash,
)
from nicbook.codec.refinement import LatentRefinement
from nicbook.data import as_rgb8
from nicbook.errors import BitstreamError, NicbookError
from nicbook.codec.hyperprior import HyperLatents
from nicbook.nn.models import STRIDE, FactorizedPrior, ScaleHyperprior
from nicbook.nn.ops import coding_device, run_in_precision
from nicbook.nn.tensors import to_tensor
from nicbook.nn.tiling import analysis_in_tiles, synthesis_in_tiles, tile_side

__all__ = [
    "EXACT_DTYPE",
    "FAST_DTYPE",
    "FORMAT_VERSION",
    "HYPERPRIOR_VERSION",
    "MAGIC",
    "MAX_PIXELS",
    "MEMORY_BUDGET",
    "PAYLOADS",
    "READABLE_VERSIONS",
    "STATIC_VERSION",
    "CodingModel",
    "HyperLatents",
    "LatentRefinement",
    "NicHeader",
    "check_memory",
    "check_model",
    "compress",
    "decode_latents",
    "decoding_memory",
    "decompress",
    "pad_to_stride",
    "read_header",
    "reconstruct",
]

#: Memory a decoder may use unless told otherwise (bytes), and what :func:`decoding_memory`
#: counts per latent and beyond the image: an upper estimate (a 12-megapixel file, estimated at
#: 1.7 GB, decoded in 0.8 GB).
MEMORY_BUDGET = 4 << 30
BYTES_PER_LATENT = 96
BYTES_BEYOND_IMAGE = 768 << 20
#: Precision of the synthesis transform when decoding files: float32 by default, as in training
#: and in the encoder's analysis; float64 with ``exact=True``. In float32, oneDNN's convolutions
#: sum in an order that depends on the thread count, enough to move a few decoded values across a
#: rounding boundary (by one level); float64 runs on torch's native kernels, whose results did not
#: change with the thread count in our tests, and shrinks any remaining summation-order
#: difference to about 1e-13, far below the 1/2 step of the final uint8 rounding.
FAST_DTYPE = torch.float32
EXACT_DTYPE = torch.float64


#: Models the codec writes files with: a factorized prior, or a (mean-)scale hyperprior.
CodingModel = FactorizedPrior | ScaleHyperprior


def check_model(model) -> CodingModel:
    """``model`` itself when the codec can use it; anything else raises :class:`NicbookError`."""
    if not isinstance(model, (FactorizedPrior, ScaleHyperprior)):
        raise NicbookError(
            f"the .nic codec needs a factorized or hyperprior model, not {type(model).__name__}"
        )
    return model


def pad_to_stride(image: np.ndarray) -> np.ndarray:
    """``image`` padded at the bottom and right, by repeating its edges, to sides that are multiples of 16."""
    height, width = image.shape[:2]
    pad = (
        (0, latent_size(height) * STRIDE - height),
        (0, latent_size(width) * STRIDE - width),
        (0, 0),
    )
    return np.pad(image, pad, mode="edge")


def compress(
    image: np.ndarray,
    model: CodingModel,
    adaptive: bool = True,
    refinement: LatentRefinement | None = None,
    progress: bool = False,
) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 image (any size) with ``model`` into ``.nic`` bytes.

    For a factorized model, ``adaptive`` (the default) sends per-image scales of the latent
    distributions and codes with them (format version 8, smaller files); ``False`` codes with the
    model's tables as they are (version 5), whose size the model's rate estimate predicts.
    ``refinement`` searches for better latents for this image before coding them
    (:mod:`nicbook.codec.refinement`: slower, smaller for the same quality; ``progress`` shows a
    bar for it; a hyperprior model's side information is searched too); the decoder is the same
    either way. A hyperprior model sends its own side information (version 7,
    :mod:`nicbook.codec.hyperprior`); ``adaptive`` does not apply to it.
    """
    model = check_model(model)
    image = as_rgb8(image)
    height, width = image.shape[:2]
    check_image_size(height, width)
    hyper = isinstance(model, ScaleHyperprior)
    entropy_model = model.hyper_entropy_model if hyper else model.entropy_model
    entropy_model.ensure_tables()
    x = to_tensor(pad_to_stride(image), entropy_model.medians.device)
    # Channels last (each position's channels side by side), for the weights too: oneDNN's faster layout.
    y = analysis_in_tiles(lambda part: run_in_precision(model.analysis, part, x.dtype, torch.channels_last), x)
    if hyper:
        z = None
        if refinement is not None:
            y, z = refinement.refine_hyperprior(model, x, y, (height, width), progress)
        payload, decoded = hyperprior.encode(model, y, z)
        return pack(HYPERPRIOR_VERSION, model.name, weights_hash(model), (height, width), decoded.symbols.shape, payload)
    if refinement is not None:
        y = refinement.refine(model, x, y, (height, width), progress)
    symbols = entropy_model.to_symbols(y[0])
    if adaptive:
        payload, version = adaptive_coding.encode(symbols, entropy_model.tables), FORMAT_VERSION
    else:
        payload, version = latents.encode(symbols, entropy_model.tables), STATIC_VERSION
    return pack(version, model.name, weights_hash(model), (height, width), symbols.shape, payload)


def _resolve_model(header: NicHeader, model: CodingModel | None) -> CodingModel:
    if model is None:
        model = zoo.load_by_name(header.model)
    model = check_model(model)
    if isinstance(model, ScaleHyperprior) != (PAYLOADS[header.version][0] == "hyperprior"):
        raise BitstreamError(
            f"a version-{header.version} file cannot be decoded with a {model.architecture} model: wrong model"
        )
    if header.latent_shape[0] != model.M:
        raise BitstreamError(
            f"file has {header.latent_shape[0]} latent channels, the model {model.M}: wrong model"
        )
    actual = weights_hash(model)
    if actual != header.weights_hash:
        raise BitstreamError(
            f"file was encoded with model {header.model!r} (weights {header.weights_hash.hex()}), "
            f"not with the given model {model.name!r} (weights {actual.hex()})"
        )
    return model


def decoding_memory(header: NicHeader) -> int:
    """Bytes that decoding the file of ``header`` needs, about: the entropy decoder's arrays per
    latent, the image, and the model and one synthesis tile (:mod:`nicbook.nn.tiling`)."""
    channels, height, width = header.latent_shape
    return channels * height * width * BYTES_PER_LATENT + 3 * header.height * header.width + BYTES_BEYOND_IMAGE


def check_memory(header: NicHeader, budget: int) -> None:
    """Refuse a file whose decoding would need more than ``budget`` bytes, before decoding it."""
    needed = decoding_memory(header)
    if needed > budget:
        raise NicbookError(
            f"decoding this {header.width}×{header.height} image needs about {needed / 2**30:.1f} GiB, more "
            f"than the memory budget of {budget / 2**30:.1f} GiB (raise the budget to decode it)"
        )


def decode_latents(
    data: bytes, model: CodingModel | None = None, memory_budget: int = MEMORY_BUDGET
) -> tuple[NicHeader, np.ndarray | HyperLatents, CodingModel]:
    """Header, latents and model of a ``.nic`` file (``model=None``: the file's zoo model).

    The latents are the integer symbols ``(M, h, w)`` for a factorized model, and a
    :class:`~nicbook.codec.hyperprior.HyperLatents` (symbols, side information, tables, means)
    for a hyperprior. A file whose decoding needs more than ``memory_budget`` bytes
    (:func:`decoding_memory`) is refused before anything is decoded.
    """
    header = read_header(data)
    check_memory(header, memory_budget)
    model = _resolve_model(header, model)
    payload = bytes(data[header.payload_offset : header.payload_offset + header.payload_length])
    kind, stream_format = PAYLOADS[header.version]
    if kind == "hyperprior":
        return header, hyperprior.decode(model, payload, header.latent_shape, stream_format), model
    decode = {
        "static": latents.decode,
        "scales-v2": adaptive_coding.decode_version_2,
        "scales": partial(adaptive_coding.decode, idle=False),
        "scales-idle": adaptive_coding.decode,
    }[kind]
    return header, decode(payload, header.latent_shape, model.entropy_model.tables, stream_format), model


@torch.no_grad()
def reconstruct(
    header: NicHeader, symbols: np.ndarray | HyperLatents, model: CodingModel, exact: bool = False
) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 image of decoded latents, cropped to the size in the header.

    The synthesis runs in :data:`FAST_DTYPE` (float32), or with ``exact`` in :data:`EXACT_DTYPE`
    (float64), whose image does not depend on the thread count (see the module's notes on
    determinism). It runs tile by tile (:mod:`nicbook.nn.tiling`), so its memory does not grow
    with the image.
    """
    dtype = EXACT_DTYPE if exact else FAST_DTYPE
    device = next(model.synthesis.parameters()).device
    device = coding_device(device) if exact else device
    if isinstance(symbols, HyperLatents):
        y_hat = symbols.latents().to(device, dtype).unsqueeze(0)
    else:
        y_hat = model.entropy_model.from_symbols(symbols, dtype, device).unsqueeze(0)
    layout = torch.contiguous_format if exact else torch.channels_last  # float64 keeps torch's own kernels
    return synthesis_in_tiles(
        lambda part: run_in_precision(model.synthesis, part, dtype, layout), y_hat, header.height, header.width,
        tile_side(dtype),
    )


def decompress(
    data: bytes, model: CodingModel | None = None, memory_budget: int = MEMORY_BUDGET, exact: bool = False
) -> np.ndarray:
    """Decode ``.nic`` bytes to an ``(H, W, 3)`` uint8 image; ``model=None`` loads the file's zoo
    model. Files needing more than ``memory_budget`` bytes are refused (:func:`decoding_memory`);
    ``exact`` decodes in float64, the same image for any thread count (:func:`reconstruct`)."""
    return reconstruct(*decode_latents(data, model, memory_budget), exact=exact)
