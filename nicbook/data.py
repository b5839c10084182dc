"""Images for the book: loading any file as 8-bit RGB, the embedded sample, Kodak and training photos.

Every codec in nicbook works on ``H×W×3 uint8`` arrays. :func:`load_image` and :func:`as_rgb8` turn
other inputs into that form with one explicit policy:

* **grayscale** (``L``, ``1``, 16-bit ``I;16``): the gray value is copied to R, G and B;
* **16-bit** samples are scaled to 8 bits as ``round(v * 255 / 65535)``;
* **palette** images are expanded to RGB (or RGBA when the palette has transparency);
* **alpha** is composited over a white background by default (``alpha="white"``), because the
  colour stored under fully transparent pixels is arbitrary; ``alpha="drop"`` keeps it as it is and
  ``alpha="error"`` refuses such images;
* **CMYK / YCbCr / LAB** files are converted to RGB by Pillow;
* EXIF orientation is applied, so the array looks the way a viewer shows the file;
* floating-point images are refused: their scale (0–1 or 0–255) is ambiguous.

The embedded sample image (:func:`sample_image`, the default of every chapter when no data set is
present) is Kodak's *kodim23* (the parrots), shipped with the package as ``nicbook/images/kodim23.png``:
a film scan that was never lossy-compressed, so JPEG, WebP and the book's own codecs start from the
same clean pixels. Credit: "Kodak Lossless True Color Image Suite, kodim23, photo by Steve Kelly";
Kodak released the suite for unrestricted use. The file is the copy in the PyPI wheel of SPORCO
(``sporco==0.2.2.post1``, ``sporco/data/kodim23.png``), itself downloaded from
http://r0k.us/graphics/kodak/kodim23.html, where the black line at the bottom of the original scan
was replaced by a copy of the line above it (the only difference from ``kodim23.png`` of the suite);
:data:`SAMPLE_SHA256` pins its bytes. ``nicbook/images/README.md`` and DATA.md say the same.

Data sets are found through the ``NICBOOK_DATA`` environment variable (a folder with ``kodak/`` and
``train/``); Kodak can also be downloaded into a user cache with SHA-256 verification of every file.
Kodak is for evaluation only: nothing in nicbook trains or tunes on it, the embedded kodim23
included. When no training photos are present, :func:`training_photos` therefore stands in with
matplotlib's portrait of Grace Hopper (:func:`stand_in_training_image`), not with the sample image.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from nicbook.errors import ChecksumError, DataNotFoundError, ImageFormatError

AlphaPolicy = Literal["white", "drop", "error"]

#: Environment variable naming the folder that holds ``kodak/`` and ``train/``.
DATA_ENV = "NICBOOK_DATA"

#: Public copy of the Kodak suite (a pinned commit, so the checksums below stay valid).
KODAK_URL = (
    "https://raw.githubusercontent.com/Zelex/images/0b8a89db599a384124fb991b85d40cfd63c73d58/kodak/"
)

#: SHA-256 of each Kodak PNG; a downloaded or cached file must match before it is used.
KODAK_SHA256: Mapping[str, str] = {
    "kodim01.png": "6b4fbe6f3e8e0e20150d5b0c32248bf072e22b5989d415f96f796c5b7004a70f",
    "kodim02.png": "1788370471429d992750a09caf6702ac74e56962447de02520d4b161738c0369",
    "kodim03.png": "b9c800ee568f0b18c983817df08d9f7f24a7ddb3abfdc31bde9234c4fde83137",
    "kodim04.png": "0c60c62599ad33fd78b29c36013fbe4120946f6c327c0ef0ec6983297fb48d23",
    "kodim05.png": "ccf694ceb6bbf431e0009ed0d5573a8ff0915095b69ddfb527b91d8325897f5e",
    "kodim06.png": "f4212cc927d1d579c712843cf8320c7eccb571e5ea80456022ffe99d67e9cd5d",
    "kodim07.png": "7cdd6d63ae0a245f6f9d983d740e11c6808c2efc24f8351aad9b5f676c27b55a",
    "kodim08.png": "5a6a089bdb47605287c00d89ebf2a5312981eb998c94b5853d917c93a9066cdb",
    "kodim09.png": "4d8d801592aeaf446978bbd1c83b76c498242d0f684769311a4e7248289500bf",
    "kodim10.png": "7aca487dc83db732a5690b7affe8558e9dadf5bb44a4589ba2b607480a07228b",
    "kodim11.png": "c7c02bd6e942d1181518e3ce2d97cf0451e4494a5e9d6ddee276940e4875d746",
    "kodim12.png": "df571f5e66d1aefd764ea77855e81e3be61528c34962a0fd1d50557502162c1e",
    "kodim13.png": "797949ce1152ef157ff0a1231c95cb8ed7641615e0b0f5f77f851a44aee19e8d",
    "kodim14.png": "08a1898d5702f32e7d9f94a94651d74a62cb9325475775a558b388c8d98f1846",
    "kodim15.png": "416c475f39b0eb9203ce7f77d2af8824f5bffc1a86a4605865017f04c41639b9",
    "kodim16.png": "5d03303693decdf7a1e1e930b5ca6684283aa80a9e7d8d6a842a74fa5f790640",
    "kodim17.png": "19d90e98e5835efae20a6e17e22e5ac6814ee2c8efb32d188ea4359abaf9f5bd",
    "kodim18.png": "83df267dfec61e9b9d3756c422502160b2fab595650c73a8b12940540ad09ec5",
    "kodim19.png": "86560efe85a13413b228ef7e42dde0d439b25a94fb8e2d6fb1dc1631cf48853b",
    "kodim20.png": "1ae187d92b3a4483b6717f7fd08592846ffdfc340c6424f6756627a27f3d8ea7",
    "kodim21.png": "26e193795108c4b5ec47206ae4ff07a353d2492947f7a7ae8d380e042b74027b",
    "kodim22.png": "627b76fccf714b4ddffb739b2eb63ba2817cf5b5a8e222079542dcf2cfdda939",
    "kodim23.png": "85c67d7ea758cb0604fb6980ab0c65091a2eefa7b3b50cbb1bc702a60206dfe5",
    "kodim24.png": "9f1c26df52217bd49f998a720a2ffeba41a535cf826f4ae32e355fb2b0bbc0fe",
}

#: The embedded sample image: Kodak's kodim23, shipped as package data (see the module's docstring).
SAMPLE_PATH = Path(__file__).resolve().parent / "images" / "kodim23.png"

#: SHA-256 of :data:`SAMPLE_PATH` (the file of ``sporco==0.2.2.post1``; a test checks it).
SAMPLE_SHA256 = "34d8f029d2eae3ed37b65e2f94fd2c319923ebfae0fa8bff5f001e2565b7d80f"

#: The name :func:`book_images` gives the sample image.
SAMPLE_NAME = "kodim23"

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


# --------------------------------------------------------------------------- images


def as_rgb8(image: np.ndarray, alpha: AlphaPolicy = "white") -> np.ndarray:
    """Return ``image`` as a contiguous ``H×W×3 uint8`` array, following the module's policy.

    Accepts ``H×W`` (gray), ``H×W×1``, ``H×W×3`` and ``H×W×4`` (RGBA) arrays of dtype uint8 or
    uint16. Raises :class:`ImageFormatError` for anything else, with the reason.
    """
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = np.round(array.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    elif array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        raise ImageFormatError(
            f"expected a uint8 or uint16 image, got dtype {array.dtype}; convert floats explicitly, "
            "e.g. np.clip(np.round(x * 255), 0, 255).astype(np.uint8) for values in [0, 1]"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageFormatError(
            f"expected an H×W, H×W×3 or H×W×4 image, got shape {tuple(np.shape(image))}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageFormatError(f"the image is empty (shape {tuple(np.shape(image))})")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = _apply_alpha_policy(array, alpha)
    return np.ascontiguousarray(array)


def _apply_alpha_policy(rgba: np.ndarray, alpha: AlphaPolicy) -> np.ndarray:
    if alpha == "drop":
        return rgba[:, :, :3]
    if alpha == "error":
        raise ImageFormatError("the image has an alpha channel (pass alpha='white' or 'drop')")
    if alpha != "white":
        raise ValueError(f"alpha must be 'white', 'drop' or 'error', not {alpha!r}")
    weight = rgba[:, :, 3:4].astype(np.float64) / 255.0
    blended = rgba[:, :, :3] * weight + 255.0 * (1.0 - weight)
    return np.round(blended).astype(np.uint8)


def pil_to_rgb8(picture: Image.Image, alpha: AlphaPolicy = "white") -> np.ndarray:
    """Convert a Pillow image of any mode to ``H×W×3 uint8`` (see the module's policy)."""
    picture = ImageOps.exif_transpose(picture)
    mode = picture.mode
    if mode == "P":
        picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
    elif mode == "PA":
        picture = picture.convert("RGBA")
    mode = picture.mode
    if mode in ("RGB", "RGBA", "L"):
        return as_rgb8(np.asarray(picture), alpha)
    if mode == "LA":
        gray, opacity = np.asarray(picture)[:, :, 0], np.asarray(picture)[:, :, 1]
        return as_rgb8(np.stack([gray, gray, gray, opacity], axis=2), alpha)
    if mode == "1":
        return as_rgb8(np.asarray(picture, dtype=bool))
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(picture).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise ImageFormatError(f"integer image with values outside 0..65535 (mode {mode})")
        return as_rgb8(values.astype(np.uint16))
    if mode == "F":
        raise ImageFormatError("floating-point images are not supported: their scale is ambiguous")
    try:
        return as_rgb8(np.asarray(picture.convert("RGB")))
    except (ValueError, OSError) as error:
        raise ImageFormatError(f"cannot convert an image of mode {mode} to RGB: {error}") from error


def load_image(path: str | os.PathLike[str], alpha: AlphaPolicy = "white") -> np.ndarray:
    """Read an image file as ``H×W×3 uint8`` (grayscale, alpha, palette and 16-bit handled)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no image file at {path}")
    try:
        with Image.open(path) as picture:
            picture.load()
            return pil_to_rgb8(picture, alpha)
    except (Image.UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as error:
        raise ImageFormatError(f"{path.name}: not an image Pillow can read ({error})") from error
    except OSError as error:
        raise ImageFormatError(f"{path.name}: cannot read the image ({error})") from error


#: Largest input file the command line reads (bytes): a device or a huge file is refused, not read.
MAX_INPUT_BYTES = 1 << 30


def read_input(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of the file at ``path``, refusing one larger than ``limit`` bytes (default
    :data:`MAX_INPUT_BYTES`) before reading it, and anything that is not a regular file."""
    limit = MAX_INPUT_BYTES if limit is None else limit
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"no file at {path}")
    if not path.is_file():
        raise ImageFormatError(f"{path} is not a regular file")
    if path.stat().st_size > limit:
        raise ImageFormatError(f"{path.name} is larger than {limit} bytes: not a file nicbook reads")
    with open(path, "rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise ImageFormatError(f"{path.name} is larger than {limit} bytes: not a file nicbook reads")
    return data


def check_output(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`Path` once its folder exists, so a long computation is not wasted on an
    output that cannot be written."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DataNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise ImageFormatError(f"cannot write {path}: it is a folder")
    return path


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, then rename it into place:
    a failure (a full disk, an interrupt) leaves any existing file at ``path`` as it was."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_image(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an ``H×W×3 uint8`` image losslessly (format from the suffix, PNG recommended), atomically."""
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ImageFormatError(f"cannot tell an image format from the name {path.name} (use .png)")
    buffer = io.BytesIO()
    Image.fromarray(as_rgb8(image)).save(buffer, image_format)
    write_atomically(path, buffer.getvalue())


def sample_image() -> np.ndarray:
    """The book's embedded default: Kodak's kodim23, the parrots (512 rows of 768 RGB pixels).

    A lossless film scan shipped with the package, so every chapter runs without a data set and
    no codec is favoured by the image's own past (source and credit: the module's docstring).
    Being a Kodak image it is for evaluation only: nothing trains on it.
    """
    return load_image(SAMPLE_PATH)


def stand_in_training_image() -> np.ndarray:
    """Grace Hopper's portrait that ships with matplotlib (600×512 RGB): the training stand-in.

    :func:`training_photos` trains on its two halves when no training photos are present. It is
    not the sample image because that one is a Kodak image, and Kodak is for evaluation only; the
    portrait is an official U.S. Navy photograph (public domain in the United States) that
    matplotlib installs, so nicbook need not ship it. It was saved as a JPEG near quality 80,
    which is why it must not be the image codecs are *compared* on (JPEG would be favoured),
    but it does no harm as a handful of training patches.
    """
    from matplotlib import cbook

    return load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


# --------------------------------------------------------------------------- data sets


def data_root() -> Path | None:
    """The folder named by ``$NICBOOK_DATA``, or None when the variable is unset or empty."""
    value = os.environ.get(DATA_ENV, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Per-user cache for downloads: ``$XDG_CACHE_HOME/nicbook`` or ``~/.cache/nicbook``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "nicbook"


def _kodak_candidates() -> list[Path]:
    root = data_root()
    candidates = [root / "kodak"] if root is not None else []
    candidates.append(cache_dir() / "kodak")
    return candidates


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in KODAK_SHA256)


def kodak_available() -> bool:
    """Whether all 24 Kodak images are on this machine (``$NICBOOK_DATA/kodak`` or the cache)."""
    return any(_is_complete(folder) for folder in _kodak_candidates())


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_kodak(
    destination: Path | None = None,
    base_url: str = KODAK_URL,
    checksums: Mapping[str, str] = KODAK_SHA256,
    progress: bool = True,
) -> Path:
    """Download the Kodak suite into ``destination`` (default: the user cache), verifying each file.

    A file is written to a temporary name, checked against its SHA-256, and only then moved into
    place, so a wrong or partial download is never cached. Files already present and correct are
    kept. Raises :class:`ChecksumError` for a mismatch and :class:`DataNotFoundError` when the
    source cannot be reached.
    """
    from tqdm.auto import tqdm

    destination = Path(destination) if destination is not None else cache_dir() / "kodak"
    destination.mkdir(parents=True, exist_ok=True)
    names = sorted(checksums)
    for name in tqdm(names, desc="Kodak", disable=not progress):
        target = destination / name
        if target.is_file() and sha256_of(target) == checksums[name]:
            continue
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=destination)
        os.close(handle)
        temporary_path = Path(temporary)
        try:
            try:
                with urllib.request.urlopen(base_url + name, timeout=60) as response, open(
                    temporary_path, "wb"
                ) as out:
                    shutil.copyfileobj(response, out)
            except (urllib.error.URLError, OSError) as error:
                raise DataNotFoundError(
                    f"could not download {name} from {base_url}: {error}. {_KODAK_HELP}"
                ) from error
            actual = sha256_of(temporary_path)
            if actual != checksums[name]:
                raise ChecksumError(
                    f"{name}: SHA-256 {actual} does not match the published {checksums[name]}; "
                    "the file was not kept"
                )
            temporary_path.replace(target)
        finally:
            temporary_path.unlink(missing_ok=True)
    return destination


_KODAK_HELP = (
    "To get the Kodak images, either set NICBOOK_DATA to a folder containing kodak/kodim01.png … "
    "kodim24.png, or run `python -m nicbook data kodak` (or nicbook.data.download_kodak()) on a "
    "machine with internet access to download and verify them into the user cache."
)


def kodak_paths(download: bool = False) -> list[Path]:
    """Paths of kodim01.png … kodim24.png, from ``$NICBOOK_DATA/kodak`` or the user cache.

    With ``download=True`` a missing suite is downloaded into the cache first.
    """
    for folder in _kodak_candidates():
        if _is_complete(folder):
            return [folder / name for name in sorted(KODAK_SHA256)]
    if download:
        folder = download_kodak()
        return [folder / name for name in sorted(KODAK_SHA256)]
    looked = ", ".join(str(folder) for folder in _kodak_candidates())
    raise DataNotFoundError(f"the Kodak images were not found (looked in {looked}). {_KODAK_HELP}")


def kodak_images(indices: Sequence[int] | None = None, download: bool = False) -> list[np.ndarray]:
    """The Kodak images as arrays; ``indices`` are 1-based (``[1, 23]`` is kodim01 and kodim23)."""
    paths = kodak_paths(download=download)
    chosen = range(1, len(paths) + 1) if indices is None else indices
    for index in chosen:
        if not 1 <= index <= len(paths):
            raise ValueError(f"Kodak indices run from 1 to {len(paths)}, got {index}")
    return [load_image(paths[index - 1]) for index in chosen]


def book_images(count: int = 1) -> list[tuple[str, np.ndarray]]:
    """``(name, image)`` pairs the chapters compute on: the first ``count`` Kodak images (kodim01,
    kodim02, ...) when the suite is present, otherwise the embedded sample image alone, named
    ``"kodim23"`` (so every chapter runs on any machine)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if kodak_available():
        paths = kodak_paths()[: min(count, len(KODAK_SHA256))]
        return [(path.stem, load_image(path)) for path in paths]
    return [(SAMPLE_NAME, sample_image())]


def training_image_paths(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """All images under ``root`` (default ``$NICBOOK_DATA/train``), searched recursively, sorted."""
    if root is None:
        base = data_root()
        if base is None:
            raise DataNotFoundError(
                f"no training images: set {DATA_ENV} to a folder whose train/ subfolder holds "
                "PNG or JPEG photos (any folder of natural photos will do)"
            )
        root = base / "train"
    folder = Path(root)
    paths = sorted(
        path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )
    if not paths:
        raise DataNotFoundError(f"no PNG or JPEG images found under {folder}")
    return paths


def train_validation_split(
    paths: Sequence[Path], validation_fraction: float = 0.05
) -> tuple[list[Path], list[Path]]:
    """Split training photos into train and held-out validation sets, the same way on every machine.

    A file goes to validation when the SHA-256 of its name falls in the lowest fraction, so the split
    is stable when files are added or the folder is moved.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError("validation_fraction must be in [0, 1)")
    threshold = int(validation_fraction * 2**32)
    train, validation = [], []
    for path in paths:
        bucket = int.from_bytes(hashlib.sha256(Path(path).name.encode()).digest()[:4], "big")
        (validation if bucket < threshold else train).append(Path(path))
    return train, validation


def has_training_photos() -> bool:
    """Whether ``$NICBOOK_DATA/train`` holds any photos."""
    try:
        return bool(training_image_paths())
    except DataNotFoundError:
        return False


def training_photos() -> tuple[list[Path], str]:
    """Paths of the training photos and a sentence saying what they are, for code that learns from photos.

    Without ``$NICBOOK_DATA/train`` the left and right halves of matplotlib's Grace Hopper
    portrait (:func:`stand_in_training_image`) stand in, written once as PNGs to
    :func:`cache_dir`, so a chapter still runs, on far less varied data; two files let a training
    run hold one out for validation. The stand-in is deliberately not :func:`sample_image`: that is
    a Kodak image, and Kodak is for evaluation only.
    """
    try:
        paths = training_image_paths()
    except DataNotFoundError:
        image = stand_in_training_image()
        middle = image.shape[1] // 2
        paths = [cache_dir() / f"stand_in_grace_hopper_{side}.png" for side in ("left", "right")]
        for path, half in zip(paths, (image[:, :middle], image[:, middle:])):
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                save_image(half, path)
        return paths, (
            "No training photos found ($NICBOOK_DATA/train is not set up): training on patches of "
            "the two halves of matplotlib's Grace Hopper portrait instead (a stand-in, not an "
            "evaluation image), so the model will generalise poorly."
        )
    return paths, f"Training on random patches of {len(paths)} photos from $NICBOOK_DATA/train."
