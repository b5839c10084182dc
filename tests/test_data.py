"""nicbook.data: the image policy, the sample image, Kodak discovery and verified download, training photos."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicbook import data
from nicbook.errors import ChecksumError, DataNotFoundError, ImageFormatError


@pytest.fixture()
def no_data(monkeypatch, tmp_path):
    """A machine without NICBOOK_DATA and with an empty user cache."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_sample_image_is_rgb8(sample):
    assert sample.shape == (512, 768, 3) and sample.dtype == np.uint8
    assert 50 < sample.mean() < 200


def test_sample_image_is_the_pinned_kodim23_shipped_in_the_package():
    """The file is package data (so a wheel has it) and its bytes are those recorded in data.py:
    SPORCO 0.2.2.post1's copy of kodim23, the suite's file with its black bottom row repaired."""
    assert data.SAMPLE_PATH.parent.parent == Path(data.__file__).resolve().parent
    assert data.SAMPLE_PATH.name == "kodim23.png" and data.SAMPLE_NAME == "kodim23"
    assert data.sha256_of(data.SAMPLE_PATH) == data.SAMPLE_SHA256
    assert data.SAMPLE_PATH.stat().st_size == 560_948
    readme = (data.SAMPLE_PATH.parent / "README.md").read_text()
    assert data.SAMPLE_SHA256 in readme and "Steve Kelly" in readme and "sporco==0.2.2.post1" in readme


def jpeg_psnrs(image: np.ndarray, qualities: range) -> list[float]:
    """PSNR (dB) of Pillow's JPEG (4:2:0, as in every chapter) at each quality."""
    from nicbook.metrics import psnr
    from nicbook.pillow_codecs import CODECS

    jpeg = CODECS["JPEG"]
    return [psnr(image, jpeg.decode(jpeg.encode(image, quality))) for quality in qualities]


def test_jpeg_psnr_on_the_sample_image_rises_with_quality(sample):
    """The default image was never lossy-compressed, so JPEG gets no bonus at the quality the photo
    was once saved at. On the former default (matplotlib's grace_hopper.jpg, saved near quality
    80) this fails: 50.8 dB at quality 80, 42.9 dB at 85."""
    psnrs = jpeg_psnrs(sample, range(50, 96))
    drops = [(50 + i, round(a, 2), round(b, 2)) for i, (a, b) in enumerate(zip(psnrs, psnrs[1:])) if b <= a]
    assert not drops, f"JPEG's PSNR does not rise from quality q to q + 1 at (q, dB, dB) {drops}"


def test_the_training_stand_in_is_not_a_kodak_image(sample):
    """Kodak is for evaluation only: the stand-in for absent training photos is matplotlib's
    portrait of Grace Hopper (600×512), not the embedded kodim23."""
    stand_in = data.stand_in_training_image()
    assert stand_in.shape == (600, 512, 3) and stand_in.dtype == np.uint8
    assert stand_in.shape != sample.shape


def _save(tmp_path: Path, picture: Image.Image, name: str) -> Path:
    path = tmp_path / name
    picture.save(path)
    return path


def test_grayscale_is_replicated(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    image = data.load_image(_save(tmp_path, Image.fromarray(gray), "g.png"))
    assert image.shape == (3, 4, 3)
    assert all(np.array_equal(image[..., c], gray) for c in range(3))


def test_alpha_composited_over_white_or_dropped(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255  # opaque red-ish pixel; the others are fully transparent
    path = _save(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png")
    white = data.load_image(path)
    assert white[0, 0].tolist() == [200, 0, 0]
    assert white[1, 1].tolist() == [255, 255, 255]
    assert data.load_image(path, alpha="drop")[1, 1].tolist() == [200, 0, 0]
    with pytest.raises(ImageFormatError, match="alpha"):
        data.load_image(path, alpha="error")


def test_palette_image_is_expanded(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = [10, 20, 30]
    rgb[2:] = [200, 100, 50]
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    image = data.load_image(_save(tmp_path, palette, "p.png"))
    assert np.array_equal(image, rgb)


def test_sixteen_bit_is_scaled(tmp_path):
    values = np.array([[0, 257, 65535]], np.uint16)
    picture = Image.fromarray(values)
    image = data.load_image(_save(tmp_path, picture, "d.png"))
    assert image[0, :, 0].tolist() == [0, 1, 255]
    assert data.as_rgb8(np.full((2, 2, 3), 65535, np.uint16)).max() == 255


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ImageFormatError, match="dtype float"):
        data.as_rgb8(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ImageFormatError, match="shape"):
        data.as_rgb8(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ImageFormatError, match="empty"):
        data.as_rgb8(np.zeros((0, 2, 3), np.uint8))
    with pytest.raises(DataNotFoundError):
        data.load_image(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ImageFormatError, match="junk.png"):
        data.load_image(junk)
    truncated = tmp_path / "cut.png"
    full = _save(tmp_path, Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "f.png")
    truncated.write_bytes(full.read_bytes()[:200])
    with pytest.raises(ImageFormatError):
        data.load_image(truncated)


def test_missing_kodak_says_how_to_get_it(no_data):
    assert not data.kodak_available()
    with pytest.raises(DataNotFoundError, match="NICBOOK_DATA"):
        data.kodak_paths()
    [(name, image)] = data.book_images(3)
    assert name == "kodim23" and np.array_equal(image, data.sample_image())
    with pytest.raises(DataNotFoundError, match="NICBOOK_DATA"):
        data.training_image_paths()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture()
def fake_source(tmp_path):
    """A loopback HTTP server holding two small PNGs, and their SHA-256 checksums."""
    served = tmp_path / "served"
    served.mkdir()
    checksums = {}
    for index in (1, 2):
        name = f"kodim{index:02d}.png"
        Image.fromarray(np.full((8, 8, 3), index * 40, np.uint8)).save(served / name)
        checksums[name] = hashlib.sha256((served / name).read_bytes()).hexdigest()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", checksums, served
    server.shutdown()
    server.server_close()


def test_download_verifies_every_file(fake_source, tmp_path):
    url, checksums, _ = fake_source
    folder = data.download_kodak(tmp_path / "kodak", base_url=url, checksums=checksums, progress=False)
    assert sorted(path.name for path in folder.iterdir()) == sorted(checksums)


def test_download_rejects_a_wrong_file_and_caches_nothing(fake_source, tmp_path):
    url, checksums, served = fake_source
    (served / "kodim02.png").write_bytes(b"tampered")
    destination = tmp_path / "kodak"
    with pytest.raises(ChecksumError, match="kodim02.png"):
        data.download_kodak(destination, base_url=url, checksums=checksums, progress=False)
    assert sorted(path.name for path in destination.iterdir()) == ["kodim01.png"]


def test_download_reports_an_unreachable_source(fake_source, tmp_path):
    url, checksums, _ = fake_source
    with pytest.raises(DataNotFoundError, match="could not download"):
        data.download_kodak(tmp_path / "k", base_url=url + "nowhere/", checksums=checksums, progress=False)
    assert list((tmp_path / "k").iterdir()) == []


def test_kodak_found_through_nicbook_data(kodak_paths):
    assert len(kodak_paths) == 24
    image = data.kodak_images([1])[0]
    assert image.shape in ((512, 768, 3), (768, 512, 3))
    with pytest.raises(ValueError, match="1 to 24"):
        data.kodak_images([0])


def test_with_kodak_the_book_computes_on_the_first_kodak_images(kodak_paths):
    assert [name for name, _ in data.book_images(3)] == ["kodim01", "kodim02", "kodim03"]


def test_the_sample_image_is_the_suites_kodim23_but_for_its_repaired_bottom_row(kodak_paths, sample):
    """SPORCO's copy replaced the black bottom line of the scan with a copy of the line above."""
    suite = data.kodak_images([23])[0]
    assert sample.shape == suite.shape
    assert np.array_equal(sample[:-1], suite[:-1])
    assert np.array_equal(sample[-1], sample[-2]) and not np.array_equal(sample[-1], suite[-1])


def test_training_split_is_stable_and_disjoint(training_paths):
    train, validation = data.train_validation_split(training_paths, 0.05)
    assert not set(train) & set(validation)
    assert len(train) + len(validation) == len(training_paths)
    assert 0 < len(validation) < 0.15 * len(training_paths)
    assert data.train_validation_split(list(reversed(training_paths)), 0.05)[1] == list(reversed(validation))


def test_training_photos_fall_back_to_the_halves_of_the_stand_in_not_of_kodim23(no_data, sample):
    assert not data.has_training_photos()
    paths, note = data.training_photos()
    assert len(paths) == 2 and "Grace Hopper" in note
    left, right = (data.load_image(path) for path in paths)
    whole = np.concatenate([left, right], axis=1)
    assert np.array_equal(whole, data.stand_in_training_image())
    assert whole.shape != sample.shape  # never the Kodak image the chapters evaluate on
    assert data.training_photos()[0] == paths


def test_training_photos_are_those_of_the_training_folder(monkeypatch, tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), 50, np.uint8)).save(tmp_path / "data" / "train" / "photo.png")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "data"))
    assert data.has_training_photos()
    paths, note = data.training_photos()
    assert [path.name for path in paths] == ["photo.png"]
    assert "1 photos" in note
