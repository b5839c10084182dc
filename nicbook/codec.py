"""The ``.nic`` file format: a factorized-prior model's rANS-coded latents in a checked container.

Layout (integers big-endian)::

    magic "\\x89NIC" | version u8 | name length u8 | model name (ASCII)
    | weights hash (8 bytes) | height u32 | width u32 | channels u16 | latent height u16
    | latent width u16 | payload length u32 | payload | CRC-32 of everything before, u32

The payload of version 3 (written by default) is the per-image scales and the latents coded with
the matching stretched tables (:mod:`nicbook.adaptive_coding`); that of version 1 (``adaptive=False``)
is the latents coded with the model's own tables. Version 2, the per-image scales of an earlier
release (32×32-pixel blocks only, no channel gains), is still read.

The weights hash (:func:`nicbook.models.weights_hash`) covers the weights and the coding tables,
so decoding with any other model is refused instead of producing garbage. Images of any size are
padded to a multiple of 16 by repeating their edges and cropped back after decoding.

Determinism: the payload depends only on the integer latents and the integer tables, and the
decoder recovers those integers exactly on any machine and thread count. The synthesis transform
runs in float64 (:data:`nicbook.models.CODING_DTYPE`): the decoded image is the same for any
thread count, and differences between CPUs stay far below the final rounding to uint8 (exact
reconstruction on every platform would need integer networks). The encoder's analysis runs in
float32, for speed: a latent lying within rounding error of a half-integer may round differently
on other hardware or thread counts, which yields another valid file, never one that decodes
differently.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nicbook import adaptive_coding, zoo
from nicbook.data import IMAGE_SUFFIXES, as_rgb8, load_image, save_image, to_image, to_tensor
from nicbook.entropy.rans import STREAM_SLACK_BITS
from nicbook.errors import BitstreamError, NicbookError, UnsupportedFormatError
from nicbook.metrics import bpp, psnr
from nicbook.models import STRIDE, FactorizedPrior, weights_hash
from nicbook.refinement import LatentRefinement
from nicbook.train import load_checkpoint, resolve_device

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_PIXELS",
    "READABLE_VERSIONS",
    "NicHeader",
    "compress",
    "decode_latents",
    "decompress",
    "evaluate_folder",
    "read_header",
    "register_cli",
]

MAGIC = b"\x89NIC"
FORMAT_VERSION = 3
#: Versions the decoder reads: 1 codes the latents with the model's tables, 2 and 3 with per-image scales.
READABLE_VERSIONS = (1, 2, 3)
#: The zoo quality the command line uses when none is given.
DEFAULT_QUALITY = 4
#: Largest image a file may declare (pixels): bounds the decoder's memory for forged headers.
MAX_PIXELS = 1 << 26
_FIXED = struct.Struct(">8sIIHHHI")  # hash, height, width, channels, latent h, latent w, payload length
_CRC = struct.Struct(">I")
_MIN_SIZE = len(MAGIC) + 2 + _FIXED.size + _CRC.size


@dataclass(frozen=True)
class NicHeader:
    """What a ``.nic`` file says about itself; ``payload_offset`` is where its rANS data starts."""

    model: str
    version: int
    weights_hash: bytes
    height: int
    width: int
    latent_shape: tuple[int, int, int]
    payload_offset: int
    payload_length: int

    @property
    def file_size(self) -> int:
        return self.payload_offset + self.payload_length + _CRC.size


def _latent_size(side: int) -> int:
    return -(-side // STRIDE)


def _pad_to_stride(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    pad = (
        (0, _latent_size(height) * STRIDE - height),
        (0, _latent_size(width) * STRIDE - width),
        (0, 0),
    )
    return np.pad(image, pad, mode="edge")


def _check_model(model) -> FactorizedPrior:
    if not isinstance(model, FactorizedPrior):
        raise NicbookError(f"the .nic codec needs a FactorizedPrior model, not {type(model).__name__}")
    return model


def compress(
    image: np.ndarray,
    model: FactorizedPrior,
    adaptive: bool = True,
    refinement: LatentRefinement | None = None,
    progress: bool = False,
) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 image (any size) with ``model`` into ``.nic`` bytes.

    ``adaptive`` (the default) sends per-image scales of the latent distributions and codes with
    them (format version 3, smaller files); ``False`` codes with the model's tables as they are
    (version 1), whose size the model's rate estimate predicts. ``refinement`` searches for better
    latents for this image before coding them (:mod:`nicbook.refinement`: slower, smaller for the
    same quality; ``progress`` shows a bar for it); the decoder is the same either way.
    """
    model = _check_model(model)
    image = as_rgb8(image)
    height, width = image.shape[:2]
    if height * width > MAX_PIXELS or max(height, width) >= 1 << 20:
        raise NicbookError(
            f"image of {width}×{height} pixels is larger than the .nic limit of {MAX_PIXELS} pixels"
        )
    device = model.entropy_model.medians.device
    x = to_tensor(_pad_to_stride(image), device)
    if refinement is None:
        symbols = model.latent_symbols(x)
    else:
        symbols = refinement.symbols(model, x, (height, width), progress)
    if adaptive:
        payload = adaptive_coding.encode(symbols, model.entropy_model.tables)
    else:
        payload = model.compress_latents(symbols)
    name = model.name.encode("ascii", errors="replace")[:255]
    body = (
        MAGIC
        + bytes([FORMAT_VERSION if adaptive else 1, len(name)])
        + name
        + _FIXED.pack(weights_hash(model), height, width, *symbols.shape, len(payload))
        + payload
    )
    return body + _CRC.pack(zlib.crc32(body))


def read_header(data: bytes) -> NicHeader:
    """Parse and check a ``.nic`` file's header, length and checksum (no model needed).

    Raises :class:`BitstreamError` naming the problem: not a ``.nic`` file, unsupported version,
    truncated, trailing bytes, checksum mismatch, or an inconsistent or oversized image.
    """
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BitstreamError("not a .nic file (bad magic bytes)")
    if len(data) < _MIN_SIZE:
        raise BitstreamError(f"truncated .nic file: {len(data)} bytes is shorter than any header")
    version, name_length = data[4], data[5]
    if version not in READABLE_VERSIONS:
        raise UnsupportedFormatError(
            f".nic format version {version}; this nicbook reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    fixed_at = 6 + name_length
    if len(data) < fixed_at + _FIXED.size + _CRC.size:
        raise BitstreamError("truncated .nic file: header cut short")
    digest, height, width, channels, latent_h, latent_w, payload_length = _FIXED.unpack_from(
        data, fixed_at
    )
    header = NicHeader(
        data[6:fixed_at].decode("ascii", errors="replace"),
        version,
        digest,
        height,
        width,
        (channels, latent_h, latent_w),
        fixed_at + _FIXED.size,
        payload_length,
    )
    if len(data) < header.file_size:
        raise BitstreamError(f"truncated .nic file: {len(data)} of {header.file_size} bytes")
    if len(data) > header.file_size:
        raise BitstreamError(f".nic file has {len(data) - header.file_size} unexpected trailing bytes")
    (stored_crc,) = _CRC.unpack_from(data, header.file_size - _CRC.size)
    if zlib.crc32(data[: header.file_size - _CRC.size]) != stored_crc:
        raise BitstreamError("corrupt .nic file: CRC-32 checksum mismatch")
    if not (1 <= height and 1 <= width and height * width <= MAX_PIXELS):
        raise BitstreamError(
            f".nic header declares an image of {width}×{height} pixels (limit {MAX_PIXELS})"
        )
    if (latent_h, latent_w) != (_latent_size(height), _latent_size(width)) or channels < 1:
        raise BitstreamError(
            f".nic header's latent shape {header.latent_shape} does not fit a {width}×{height} image"
        )
    return header


def _resolve_model(header: NicHeader, model: FactorizedPrior | None) -> FactorizedPrior:
    if model is None:
        model = zoo.load_by_name(header.model)
    model = _check_model(model)
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


def _check_payload_capacity(header: NicHeader, model: FactorizedPrior) -> None:
    """Refuse a header that claims more latents than its payload could possibly code.

    Every symbol of channel ``c`` costs at least ``-log2(max frequency / 2**precision)`` bits, so a
    small payload cannot stand for a huge latent tensor; checked before anything is allocated.
    """
    _, latent_h, latent_w = header.latent_shape
    needed = latent_h * latent_w * float(model.entropy_model.tables.cheapest_bits().sum())
    if needed > 8 * header.payload_length + STREAM_SLACK_BITS:
        raise BitstreamError(
            f".nic header declares {header.latent_shape} latents, which need at least {needed:.0f} bits, "
            f"but the payload holds {8 * header.payload_length}: corrupt or forged header"
        )


def decode_latents(
    data: bytes, model: FactorizedPrior | None = None
) -> tuple[NicHeader, np.ndarray, FactorizedPrior]:
    """Header, integer latents ``(M, h, w)`` and the model of a ``.nic`` file (``model=None``: from the zoo)."""
    header = read_header(data)
    model = _resolve_model(header, model)
    payload = bytes(data[header.payload_offset : header.payload_offset + header.payload_length])
    if header.version == 1:
        _check_payload_capacity(header, model)
        return header, model.decompress_latents(payload, header.latent_shape), model
    decode = adaptive_coding.decode if header.version == 3 else adaptive_coding.decode_version_2
    return header, decode(payload, header.latent_shape, model.entropy_model.tables), model


def reconstruct(header: NicHeader, symbols: np.ndarray, model: FactorizedPrior) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 image of decoded latents, cropped to the size in the header."""
    return to_image(model.synthesize(symbols)[0, :, : header.height, : header.width])


def decompress(data: bytes, model: FactorizedPrior | None = None) -> np.ndarray:
    """Decode ``.nic`` bytes to an ``(H, W, 3)`` uint8 image; ``model=None`` loads the file's zoo model."""
    return reconstruct(*decode_latents(data, model))


# --------------------------------------------------------------------------- command line


def _model_from_args(args, required: bool = True) -> FactorizedPrior | None:
    device = resolve_device(getattr(args, "device", "cpu") or "cpu")
    if getattr(args, "checkpoint", None):
        return _check_model(zoo.load_checkpoint(args.checkpoint, device))
    if getattr(args, "model", None) and getattr(args, "quality", None) is not None:
        return zoo.load(args.model, args.quality, device)
    architecture = getattr(args, "model", None) or "factorized"
    return zoo.load(architecture, DEFAULT_QUALITY, device) if required else None


def _training_lmbda(args, quality: int | None = None) -> float:
    """The λ the model named by the CLI arguments (or zoo ``quality``) was trained for."""
    if args.lmbda is not None:
        return args.lmbda
    if args.checkpoint:
        config = load_checkpoint(args.checkpoint).get("train_config")
        if config is None:
            raise NicbookError(
                f"{args.checkpoint} does not record the λ it was trained for; pass --lmbda"
            )
        return config["lmbda"]
    if quality is None:
        quality = DEFAULT_QUALITY if args.quality is None else args.quality
    return zoo.CONFIGURATIONS[args.model][quality]["lmbda"]


def _refinement_from_args(args, quality: int | None = None) -> LatentRefinement | None:
    return LatentRefinement(_training_lmbda(args, quality), args.refine) if args.refine else None


def _cli_encode(args) -> int:
    image = load_image(args.input)
    model = _model_from_args(args)
    refinement = _refinement_from_args(args)
    data = compress(
        image, model, adaptive=not args.static_tables, refinement=refinement, progress=True
    )
    Path(args.output).write_bytes(data)
    print(
        f"{args.output}: {len(data)} bytes, {8 * len(data) / (image.shape[0] * image.shape[1]):.4f} bpp"
    )
    return 0


def _cli_decode(args) -> int:
    data = Path(args.input).read_bytes()
    save_image(decompress(data, _model_from_args(args, required=False)), args.output)
    return 0


def _cli_info(args) -> int:
    data = Path(args.input).read_bytes()
    header = read_header(data)
    info = {
        "model": header.model,
        "version": header.version,
        "weights_hash": header.weights_hash.hex(),
        "width": header.width,
        "height": header.height,
        "latent_shape": list(header.latent_shape),
        "bytes": len(data),
        "payload_bytes": header.payload_length,
        "bpp": 8 * len(data) / (header.width * header.height),
    }
    try:
        _, symbols, model = decode_latents(data, _model_from_args(args, required=False))
        info["estimated_bits"] = round(model.estimated_bits(symbols), 1)
    except NicbookError as error:
        info["estimated_bits"] = None
        info["note"] = str(error)
    print(json.dumps(info, indent=1))
    return 0


def _cli_models(args) -> int:
    entries = zoo.available()
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    for entry in entries:
        status = "shipped" if entry["shipped"] else "not shipped"
        print(f"{entry['name']:16s} lambda={entry['lmbda']:<7g} N={entry['N']} M={entry['M']}  {status}")
    return 0


def evaluate_folder(
    folder: str | Path,
    model: FactorizedPrior,
    progress: bool = True,
    adaptive: bool = True,
    refinement: LatentRefinement | None = None,
) -> dict:
    """Encode and decode every image in ``folder``: per-image and mean bpp (real file sizes) and RGB PSNR.

    ``adaptive`` and ``refinement`` are passed to :func:`compress`.
    """
    paths = sorted(path for path in Path(folder).iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise NicbookError(f"no images in {folder}")
    images = []
    for path in tqdm(paths, desc=model.name, disable=not progress, file=sys.stderr):
        image = load_image(path)
        data = compress(image, model, adaptive, refinement)
        images.append(
            {
                "image": path.name,
                "bytes": len(data),
                "bpp": bpp(data, image.shape),
                "psnr": psnr(image, decompress(data, model)),
            }
        )
    return {
        "model": model.name,
        "bpp": float(np.mean([entry["bpp"] for entry in images])),
        "psnr": float(np.mean([entry["psnr"] for entry in images])),
        "images": images,
    }


def _cli_eval(args) -> int:
    if args.checkpoint or args.quality is not None:
        models = [(_model_from_args(args), _refinement_from_args(args))]
    else:
        shipped = [
            entry
            for entry in zoo.available()
            if entry["architecture"] == args.model and entry["shipped"]
        ]
        if not shipped:
            raise NicbookError(f"no shipped weights for {args.model}; pass --checkpoint PATH")
        models = [
            (
                zoo.load(args.model, entry["quality"], args.device),
                _refinement_from_args(args, entry["quality"]),
            )
            for entry in shipped
        ]
    points = [
        evaluate_folder(args.folder, model, progress=not args.json, refinement=refinement)
        for model, refinement in models
    ]
    if args.json:
        print(json.dumps({"points": points}))
    else:
        for point in points:
            print(
                f"{point['model']}: {point['bpp']:.4f} bpp, {point['psnr']:.2f} dB over {len(point['images'])} images"
            )
    return 0


def register_cli(subparsers) -> None:
    """Add ``nicbook encode``, ``decode``, ``info``, ``models`` and ``eval``."""

    def model_options(parser, with_zoo: bool = True) -> None:
        if with_zoo:
            parser.add_argument(
                "--model", default="factorized", help="zoo architecture (default factorized)"
            )
            parser.add_argument(
                "--quality", type=int, default=None, help=f"zoo quality (default {DEFAULT_QUALITY})"
            )
        parser.add_argument("--checkpoint", default=None, help="a checkpoint written by `nicbook train`")
        parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")

    def refine_options(parser) -> None:
        parser.add_argument(
            "--refine",
            type=int,
            default=0,
            metavar="STEPS",
            help="refine each image's latents with STEPS gradient steps (16 is a good choice; about "
            "1.5 s each for a 768x512 image on two CPU cores): smaller files, same decoder",
        )
        parser.add_argument(
            "--lmbda",
            type=float,
            default=None,
            help="the rate-distortion trade-off --refine aims for (default: the model's training λ)",
        )

    encode = subparsers.add_parser("encode", help="compress an image into a .nic file")
    encode.add_argument("input", help="image file (PNG, JPEG, ...)")
    encode.add_argument("output", help=".nic file to write")
    model_options(encode)
    encode.add_argument(
        "--static-tables",
        action="store_true",
        help="code with the model's tables as they are (format version 1) instead of per-image scales",
    )
    refine_options(encode)
    encode.set_defaults(func=_cli_encode)

    decode = subparsers.add_parser("decode", help="decompress a .nic file into an image")
    decode.add_argument("input", help=".nic file")
    decode.add_argument("output", help="image file to write (PNG recommended)")
    model_options(decode, with_zoo=False)
    decode.set_defaults(func=_cli_decode)

    info = subparsers.add_parser("info", help="describe a .nic file as JSON")
    info.add_argument("input", help=".nic file")
    model_options(info, with_zoo=False)
    info.set_defaults(func=_cli_info)

    models = subparsers.add_parser("models", help="list the neural codecs of the zoo")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(func=_cli_models)

    evaluate = subparsers.add_parser(
        "eval", help="rate-distortion points of a neural codec on a folder of images"
    )
    evaluate.add_argument("folder", help="folder of images (e.g. Kodak)")
    model_options(evaluate)
    refine_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=_cli_eval)
