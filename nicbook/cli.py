"""The ``nicbook`` command line: every subcommand's options and what it does.

The modules of the package expose plain functions; this module alone parses arguments. Building
the parser loads no torch: the neural commands import the neural modules when they run, so
``nicbook jpeg encode`` starts as fast as numpy does. Errors a user can cause become a one-line
message on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from nicbook import __version__
from nicbook.errors import NicbookError
from nicbook.jpeg.encoder import SUBSAMPLINGS
from nicbook.nn.config import TrainConfig

#: The zoo quality the command line uses when none is given.
DEFAULT_QUALITY = 4


# --------------------------------------------------------------------------- .nic files


def _model_from_args(args, required: bool = True):
    """The model the options name: ``--checkpoint``, else the zoo's ``--model``/``--quality``."""
    from nicbook import codec, zoo
    from nicbook.nn.ops import resolve_device

    device = resolve_device(getattr(args, "device", "cpu") or "cpu")
    if getattr(args, "checkpoint", None):
        return codec.check_model(zoo.load_checkpoint(args.checkpoint, device))
    if getattr(args, "model", None) and getattr(args, "quality", None) is not None:
        return zoo.load(args.model, args.quality, device)
    architecture = getattr(args, "model", None) or "factorized"
    return zoo.load(architecture, DEFAULT_QUALITY, device) if required else None


def _training_lmbda(args, quality: int | None = None) -> float:
    """The λ the model named by the options (or zoo ``quality``) was trained for."""
    from nicbook import zoo
    from nicbook.nn.checkpoints import load_checkpoint

    if args.lmbda is not None:
        return args.lmbda
    if args.checkpoint:
        config = load_checkpoint(args.checkpoint).get("train_config")
        if config is None:
            raise NicbookError(f"{args.checkpoint} does not record the λ it was trained for; pass --lmbda")
        return config["lmbda"]
    if quality is None:
        quality = DEFAULT_QUALITY if args.quality is None else args.quality
    return zoo.configuration(args.model, quality)["lmbda"]


def _refinement_from_args(args, quality: int | None = None):
    from nicbook.codec import LatentRefinement

    return LatentRefinement(_training_lmbda(args, quality), args.refine) if args.refine else None


def _encode(args) -> int:
    from nicbook import codec
    from nicbook.data import check_output, load_image, write_atomically
    from nicbook.metrics import bpp

    check_output(args.output)
    image = load_image(args.input)
    data = codec.compress(
        image, _model_from_args(args), adaptive=not args.static_tables,
        refinement=_refinement_from_args(args), progress=True,
    )
    write_atomically(args.output, data)
    print(f"{args.output}: {len(data)} bytes, {bpp(data, image.shape):.4f} bpp")
    return 0


def _decode(args) -> int:
    from nicbook import codec
    from nicbook.data import check_output, read_input, save_image

    check_output(args.output)
    data = read_input(args.input)
    budget = codec.MEMORY_BUDGET if args.memory_budget is None else int(args.memory_budget * 2**30)
    model = _model_from_args(args, required=False)
    save_image(codec.decompress(data, model, budget, exact=args.exact), args.output)
    return 0


def _info(args) -> int:
    from nicbook import codec
    from nicbook.data import read_input

    data = read_input(args.input)
    header = codec.read_header(data)
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
        _, symbols, model = codec.decode_latents(data, _model_from_args(args, required=False))
        if isinstance(symbols, codec.HyperLatents):
            side_bits, latent_bits = codec.hyperprior.estimated_bits(model, symbols)
            info.update(
                side_bytes=symbols.side_bytes, latent_bytes=symbols.latent_bytes,
                estimated_side_bits=round(side_bits, 1), estimated_latent_bits=round(latent_bits, 1),
            )
            info["estimated_bits"] = round(side_bits + latent_bits, 1)
        else:
            info["estimated_bits"] = round(float(model.entropy_model.channel_bits(symbols).sum()), 1)
    except NicbookError as error:
        info["estimated_bits"] = None
        info["note"] = str(error)
    print(json.dumps(info, indent=1))
    return 0


def _models(args) -> int:
    from nicbook import zoo

    entries = zoo.available()
    kodak = {entry["name"]: entry["kodak"] for entry in zoo.shipped() if "kodak" in entry}
    for entry in entries:
        if entry["name"] in kodak:
            entry["kodak"] = {key: kodak[entry["name"]][key] for key in ("bpp", "psnr")}
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    for entry in entries:
        status = "shipped" if entry["shipped"] else "not shipped"
        if "kodak" in entry:
            status += f"  Kodak {entry['kodak']['bpp']:.4f} bpp, {entry['kodak']['psnr']:.2f} dB"
        print(f"{entry['name']:16s} lambda={entry['lmbda']:<7g} N={entry['N']} M={entry['M']}  {status}")
    return 0


def _eval(args) -> int:
    from nicbook import codec, zoo
    from nicbook.evaluation import evaluate_folder

    if args.checkpoint or args.quality is not None:
        models = [(_model_from_args(args), _refinement_from_args(args))]
    else:
        shipped = zoo.shipped(args.model)
        if not shipped:
            raise NicbookError(f"no shipped weights for {args.model}; pass --checkpoint PATH")
        models = [
            (zoo.load(args.model, entry["quality"], args.device), _refinement_from_args(args, entry["quality"]))
            for entry in shipped
        ]
    points = []
    for model, refinement in models:
        points.append(
            evaluate_folder(
                args.folder,
                lambda image, model=model, refinement=refinement: codec.compress(image, model, refinement=refinement),
                lambda data, model=model: codec.decompress(data, model),
                model.name,
                progress=not args.json,
            )
        )
    if args.json:
        print(json.dumps({"points": points}))
    else:
        for point in points:
            print(f"{point['model']}: {point['bpp']:.4f} bpp, {point['psnr']:.2f} dB over {len(point['images'])} images")
    return 0


def _add_codec_commands(subparsers) -> None:
    def model_options(parser, with_zoo: bool = True) -> None:
        if with_zoo:
            parser.add_argument("--model", default="factorized", help="zoo architecture (default factorized)")
            parser.add_argument("--quality", type=int, default=None, help=f"zoo quality (default {DEFAULT_QUALITY})")
        parser.add_argument("--checkpoint", default=None, help="a checkpoint written by `nicbook train`")
        parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")

    def refine_options(parser) -> None:
        parser.add_argument(
            "--refine", type=int, default=0, metavar="STEPS",
            help="refine each image's latents (and a hyperprior's side information) with STEPS gradient "
            "steps (16 is a good choice; about 1.5 s each for a 768x512 image on two CPU cores): better "
            "files, same decoder",
        )
        parser.add_argument(
            "--lmbda", type=float, default=None,
            help="the rate-distortion trade-off --refine aims for (default: the model's training λ)",
        )

    encode = subparsers.add_parser("encode", help="compress an image into a .nic file")
    encode.add_argument("input", help="image file (PNG, JPEG, ...)")
    encode.add_argument("output", help=".nic file to write")
    model_options(encode)
    encode.add_argument(
        "--static-tables", action="store_true",
        help="code with the model's tables as they are (format version 5) instead of per-image scales",
    )
    refine_options(encode)
    encode.set_defaults(func=_encode)

    decode = subparsers.add_parser("decode", help="decompress a .nic file into an image")
    decode.add_argument("input", help=".nic file")
    decode.add_argument("output", help="image file to write (PNG recommended)")
    decode.add_argument(
        "--exact", action="store_true",
        help="run the synthesis in float64: about twice as slow, the same image for any thread count",
    )
    decode.add_argument(
        "--memory-budget", type=float, metavar="GIB",
        help="refuse a file whose decoding would need more memory than this, in GiB "
        "(default: nicbook.codec.MEMORY_BUDGET, 4 GiB)",
    )
    model_options(decode, with_zoo=False)
    decode.set_defaults(func=_decode)

    info = subparsers.add_parser("info", help="describe a .nic file as JSON")
    info.add_argument("input", help=".nic file")
    model_options(info, with_zoo=False)
    info.set_defaults(func=_info)

    models = subparsers.add_parser("models", help="list the neural codecs of the zoo (shipped ones with their Kodak point)")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(func=_models)

    evaluate = subparsers.add_parser("eval", help="rate-distortion points of a neural codec on a folder of images")
    evaluate.add_argument("folder", help="folder of images (e.g. Kodak)")
    model_options(evaluate)
    refine_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=_eval)


# --------------------------------------------------------------------------- training and releases


def _train(args) -> int:
    import torch

    from nicbook.data import training_image_paths
    from nicbook.nn.checkpoints import CHECKPOINT_NAME
    from nicbook.nn.config import check_config
    from nicbook.nn.training import fit

    if args.threads:
        torch.set_num_threads(args.threads)
    options = {field.name: getattr(args, field.name) for field in fields(TrainConfig) if hasattr(args, field.name)}
    config = check_config(TrainConfig(**{**options, "out_dir": args.out}))
    paths = training_image_paths(args.data) if args.data else None
    fit(config, paths, progress=not args.no_progress)
    print(f"checkpoint: {Path(args.out) / CHECKPOINT_NAME}")
    return 0


def _export(args) -> int:
    from nicbook.release import release_model

    path, release = release_model(args.run, args.quality, args.kodak, args.hardware)
    print(f"{path}: {json.dumps({key: value for key, value in release.items() if key != 'kodak'})}")
    if "kodak" in release:
        print(f"Kodak: {release['kodak']['bpp']:.4f} bpp, {release['kodak']['psnr']:.2f} dB")
    return 0


def _restore(args) -> int:
    from nicbook.release import restore_run

    print(restore_run(args.quality, args.run, args.model))
    return 0


def _add_training_commands(subparsers) -> None:
    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "train",
        help="train a model (factorized prior by default) on $NICBOOK_DATA/train",
        description="Train a model; resumes when OUT already holds a checkpoint.",
    )
    parser.add_argument("--out", required=True, help="folder for checkpoint.pt and log.jsonl")
    parser.add_argument("--lmbda", type=float, default=defaults.lmbda, help="rate-distortion trade-off (MSE on 0-255)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimiser steps")
    parser.add_argument("--data", default=None, help="folder of training photos (default $NICBOOK_DATA/train)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for field in fields(TrainConfig):
        if field.name in {"lmbda", "steps", "out_dir", "init_from", "transforms_from", "amp", "hyper_path_only"}:
            continue
        parser.add_argument("--" + field.name.replace("_", "-"), type=type(field.default), default=field.default)
    parser.add_argument("--init-from", default=None, help="checkpoint whose weights start a new run (fine-tuning)")
    parser.add_argument(
        "--transforms-from", default=None,
        help="checkpoint (any architecture, same N and M) whose analysis and synthesis transforms start "
        "a new run: a hyperprior warm-started from a trained factorized model",
    )
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    parser.add_argument(
        "--hyper-path-only", action="store_true",
        help="train a hyperprior's hyper path alone on the latents of its frozen transforms (from "
        "--init-from or --transforms-from); --patch-size is the crop side, a multiple of 64",
    )
    parser.set_defaults(func=_train)

    export = subparsers.add_parser("export", help="ship a finished training run as zoo weights (package data)")
    export.add_argument("run", help="run folder written by `nicbook train`")
    export.add_argument("--quality", type=int, required=True, help="zoo quality it becomes")
    export.add_argument("--kodak", default=None, help="Kodak folder: measure and record the RD point")
    export.add_argument("--hardware", default=None, help="what it was trained on, for the manifest")
    export.set_defaults(func=_export)

    restore = subparsers.add_parser("restore", help="write a shipped model out as a run folder, to train it further")
    restore.add_argument("quality", type=int, help="zoo quality of the model")
    restore.add_argument("run", help="run folder to create; then `nicbook train --init-from RUN/checkpoint.pt`")
    restore.add_argument("--model", default="factorized",
                         help="zoo architecture (default factorized)")
    restore.set_defaults(func=_restore)


# --------------------------------------------------------------------------- JPEG, data and grading


def _jpeg_encode(args) -> int:
    from nicbook import jpeg
    from nicbook.data import check_output, load_image
    from nicbook.metrics import bpp

    check_output(args.output)
    image = load_image(args.input)
    size = jpeg.encode_file(image, args.output, args.quality, args.subsampling, args.optimize)
    print(f"{args.output}: {size} bytes, {bpp(8 * size, image.shape):.3f} bpp")
    return 0


def _jpeg_decode(args) -> int:
    from nicbook import jpeg
    from nicbook.data import check_output, save_image

    check_output(args.output)
    image = jpeg.decode_file(args.input)
    save_image(image, args.output)
    print(f"{args.output}: {image.shape[1]}×{image.shape[0]} pixels")
    return 0


def _data(args) -> int:
    from nicbook import data

    if args.dataset == "kodak":
        paths = data.kodak_paths(download=True)
        print(f"Kodak: {len(paths)} images verified in {paths[0].parent}")
        return 0
    root = data.data_root()
    print(f"{data.DATA_ENV}: {root if root is not None else '(unset)'}")
    print(f"Kodak available: {data.kodak_available()}")
    try:
        print(f"training images: {len(data.training_image_paths())}")
    except NicbookError as error:
        print(f"training images: none ({error})")
    return 0


def _grade(args) -> int:
    from nicbook.exercises import grade_notebook

    try:
        entries = grade_notebook(args.notebook, args.exercise, args.timeout)
    except NicbookError as error:  # no notebook, not a notebook, no such exercise: nothing was graded
        print(f"nicbook grade: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(entries, indent=1, ensure_ascii=False))
    else:
        for entry in entries:
            print(f"{'passed ' if entry['passed'] else 'not yet'}  {entry['exercise']}: {entry['message']}")
        print(f"{sum(entry['passed'] for entry in entries)} of {len(entries)} auto-checked exercises pass")
    return 0 if entries and all(entry["passed"] for entry in entries) else 1


def _add_jpeg_and_data_commands(subparsers) -> None:
    parser = subparsers.add_parser("jpeg", help="encode or decode baseline JPEG files with nicbook's codec")
    commands = parser.add_subparsers(dest="jpeg_command", metavar="ACTION", required=True)
    encoder = commands.add_parser("encode", help="compress an image (PNG, JPEG, ...) to a JPEG file")
    encoder.add_argument("input", help="image file to compress")
    encoder.add_argument("output", help="JPEG file to write")
    encoder.add_argument("--quality", type=int, default=75, help="1..100, libjpeg's scale (default 75)")
    encoder.add_argument("--subsampling", choices=sorted(SUBSAMPLINGS), default="420", help="chroma sampling")
    encoder.add_argument("--optimize", action="store_true", help="Huffman tables built for this image")
    encoder.set_defaults(func=_jpeg_encode)
    decoder = commands.add_parser("decode", help="decode a baseline JPEG file to a lossless image (PNG)")
    decoder.add_argument("input", help="JPEG file to read")
    decoder.add_argument("output", help="image file to write, format from its suffix (PNG recommended)")
    decoder.set_defaults(func=_jpeg_decode)

    parser = subparsers.add_parser("data", help="locate or download the book's data sets")
    parser.add_argument("dataset", choices=["kodak", "status"], help="download Kodak, or show status")
    parser.set_defaults(func=_data)

    parser = subparsers.add_parser(
        "grade", help="run the auto-checked exercises of a learner's notebook and report which pass",
        description="Execute NOTEBOOK in a fresh kernel, one time limit per cell and one per check, and "
        "report each check's verdict. Exit status 0 when every check passes, 1 when one does not, "
        "2 when nothing could be graded (no such file, not a notebook, no such exercise).",
    )
    parser.add_argument("notebook", help="the learner's .ipynb file")
    parser.add_argument("--exercise", default=None, metavar="LABEL",
                        help="grade one exercise: its label (ch01-ex-psnr) or its check (check_psnr, psnr)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of {exercise, check, passed, message}")
    parser.add_argument(
        "--timeout", type=float, default=600, metavar="SECONDS", help="time limit per cell (default 600)"
    )
    parser.set_defaults(func=_grade)


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand attached, in the order ``--help`` lists them."""
    parser = argparse.ArgumentParser(
        prog="nicbook", description="Image codecs from the nicbook book: JPEG, KLT and neural."
    )
    parser.add_argument("--version", action="version", version=f"nicbook {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_codec_commands(subparsers)
    _add_training_commands(subparsers)
    _add_jpeg_and_data_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (NicbookError, OSError, ValueError) as error:
        message = str(error) or error.__class__.__name__
        print(f"nicbook {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nicbook: interrupted", file=sys.stderr)
        return 130
