"""nicbook.cli: every subcommand through ``main``, exit codes, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nicbook import cli, data, jpeg, zoo
from nicbook.data import load_image, sample_image, save_image
from nicbook.errors import DataNotFoundError
from nicbook.nn.checkpoints import save_checkpoint


@pytest.fixture(autouse=True)
def no_shipped_weights(monkeypatch, tmp_path):
    """No zoo model is shipped: commands that would fall back to one fail instead."""
    monkeypatch.setattr(zoo, "weights_dir", lambda: tmp_path / "no-weights")


@pytest.fixture
def checkpoint(tmp_path, tiny_model):
    path = tmp_path / "model.pt"
    save_checkpoint(path, tiny_model())
    return path


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "in.png"
    save_image(sample_image()[:45, :70], path)
    return path


def run(capsys, *argv):
    status = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def run_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nicbook", *args], capture_output=True, text=True, timeout=120)


def assert_one_line_error(status, err, command):
    assert status == 1
    assert err.startswith(f"nicbook {command}: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- the entry point


def test_version_and_help():
    assert run_process("--version").stdout.startswith("nicbook ")
    result = run_process("--help")
    assert result.returncode == 0
    for command in ("encode", "decode", "info", "models", "eval", "train", "export", "restore", "jpeg", "data"):
        assert command in result.stdout, command


def test_unknown_command_is_a_usage_error(capsys):
    result = run_process("no-such-command")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])
    assert cli.main([]) == 2 and "COMMAND" in capsys.readouterr().out


def test_user_errors_become_one_line_messages(monkeypatch, capsys):
    def fail(download=False):
        raise DataNotFoundError("the Kodak images were not found")

    monkeypatch.setattr(data, "kodak_paths", fail)
    status, _, err = run(capsys, "data", "kodak")
    assert status == 1 and err == "nicbook data: error: the Kodak images were not found\n"


# --------------------------------------------------------------------------- data and JPEG


def test_data_status_reports_missing_data(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    status, out, _ = run(capsys, "data", "status")
    assert status == 0 and "(unset)" in out and "Kodak available: False" in out


def test_jpeg_encode_and_decode_write_what_the_codec_gives(capsys, tmp_path):
    crop = sample_image()[100:260, 150:350]
    save_image(crop, tmp_path / "in.png")
    status, out, _ = run(capsys, "jpeg", "encode", tmp_path / "in.png", tmp_path / "b.jpg", "--quality", 60)
    assert status == 0 and "bpp" in out
    assert (tmp_path / "b.jpg").read_bytes() == jpeg.encode(crop, 60)
    status, _, _ = run(capsys, "jpeg", "decode", tmp_path / "b.jpg", tmp_path / "out.png")
    assert status == 0
    np.testing.assert_array_equal(load_image(tmp_path / "out.png"), jpeg.decode(jpeg.encode(crop, 60)))
    status, _, err = run(capsys, "jpeg", "decode", tmp_path / "missing.jpg", tmp_path / "out.png")
    assert_one_line_error(status, err, "jpeg")


# --------------------------------------------------------------------------- .nic files and models


def test_encode_decode_info_round_trip(capsys, tmp_path, checkpoint, picture):
    status, out, _ = run(capsys, "encode", picture, tmp_path / "x.nic", "--checkpoint", checkpoint)
    assert status == 0 and "bpp" in out
    status, _, _ = run(
        capsys, "decode", tmp_path / "x.nic", tmp_path / "out.png", "--checkpoint", checkpoint
    )
    assert status == 0 and load_image(tmp_path / "out.png").shape == (45, 70, 3)
    status, out, _ = run(capsys, "info", tmp_path / "x.nic", "--checkpoint", checkpoint)
    info = json.loads(out)
    assert status == 0 and (info["width"], info["height"]) == (70, 45)
    assert info["bytes"] == (tmp_path / "x.nic").stat().st_size and info["estimated_bits"] > 0
    assert info["version"] == 8
    status, out, _ = run(capsys, "info", tmp_path / "x.nic")
    assert status == 0 and json.loads(out)["estimated_bits"] is None
    status, _, _ = run(
        capsys, "encode", picture, tmp_path / "s.nic", "--checkpoint", checkpoint, "--static-tables"
    )
    status, out, _ = run(capsys, "info", tmp_path / "s.nic", "--checkpoint", checkpoint)
    assert status == 0 and json.loads(out)["version"] == 5


def test_decode_refuses_a_file_over_its_memory_budget(capsys, tmp_path, checkpoint, picture):
    from nicbook import codec

    status, _, _ = run(capsys, "encode", picture, tmp_path / "x.nic", "--checkpoint", checkpoint)
    args = ("decode", tmp_path / "x.nic", tmp_path / "out.png", "--checkpoint", checkpoint)
    status, _, err = run(capsys, *args, "--memory-budget", 0.1)
    assert_one_line_error(status, err, "decode")
    assert "memory budget of 0.1 GiB" in err and not (tmp_path / "out.png").exists()
    status, _, _ = run(capsys, *args, "--memory-budget", 1.5)
    assert status == 0
    fast = load_image(tmp_path / "out.png")
    status, _, _ = run(capsys, *args, "--exact")
    assert status == 0 and np.abs(load_image(tmp_path / "out.png").astype(int) - fast).max() <= 1
    default = f"{codec.MEMORY_BUDGET / 2**30:g} GiB"
    assert default in run_process("decode", "--help").stdout  # the help and the README say the default
    assert default in (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_refined_encoding_needs_a_known_lambda(capsys, tmp_path, checkpoint, picture):
    args = ("encode", picture, tmp_path / "r.nic", "--checkpoint", checkpoint, "--refine", 2)
    status, _, err = run(capsys, *args)
    assert_one_line_error(status, err, "encode")
    assert "--lmbda" in err and not (tmp_path / "r.nic").exists()
    status, _, _ = run(capsys, *args, "--lmbda", 0.01)
    assert status == 0
    status, _, _ = run(capsys, "decode", tmp_path / "r.nic", tmp_path / "r.png", "--checkpoint", checkpoint)
    assert status == 0 and load_image(tmp_path / "r.png").shape == (45, 70, 3)
    status, _, err = run(capsys, *args, "--lmbda", -1)
    assert_one_line_error(status, err, "encode")
    assert "lmbda must be positive" in err


def test_bad_inputs_give_one_line_errors(capsys, tmp_path, checkpoint, picture):
    (tmp_path / "junk.nic").write_bytes(b"junk" * 20)
    status, _, err = run(
        capsys, "decode", tmp_path / "junk.nic", tmp_path / "o.png", "--checkpoint", checkpoint
    )
    assert_one_line_error(status, err, "decode")
    assert "not a .nic file" in err
    status, _, err = run(capsys, "decode", tmp_path / "missing.nic", tmp_path / "o.png")
    assert_one_line_error(status, err, "decode")
    status, _, err = run(capsys, "encode", picture, tmp_path / "x.nic")
    assert_one_line_error(status, err, "encode")
    assert "not shipped" in err
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"\x80\x02cos\nsystem\n(S'true'\ntR.")
    status, _, err = run(capsys, "encode", picture, tmp_path / "x.nic", "--checkpoint", evil)
    assert_one_line_error(status, err, "encode")
    assert "refusing" in err
    status, _, err = run(
        capsys, "encode", tmp_path / "missing.png", tmp_path / "x.nic", "--checkpoint", checkpoint
    )
    assert_one_line_error(status, err, "encode")


def test_outputs_are_checked_first_and_written_atomically(capsys, tmp_path, checkpoint, picture, monkeypatch):
    # A folder that does not exist is refused before any work is done.
    status, _, err = run(capsys, "encode", picture, tmp_path / "nowhere" / "x.nic", "--checkpoint", checkpoint)
    assert_one_line_error(status, err, "encode")
    assert "does not exist" in err
    # A failed write leaves the existing file as it was and no temporary file behind.
    nic = tmp_path / "x.nic"
    assert run(capsys, "encode", picture, nic, "--checkpoint", checkpoint)[0] == 0
    out = tmp_path / "out.png"
    out.write_bytes(b"the previous decoding")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.os, "replace", full_disk)
    status, _, err = run(capsys, "decode", nic, out, "--checkpoint", checkpoint)
    assert_one_line_error(status, err, "decode")
    assert out.read_bytes() == b"the previous decoding"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["in.png", "model.pt", "out.png", "x.nic"])


def test_inputs_that_are_not_regular_files_or_too_large_are_refused(capsys, tmp_path, monkeypatch):
    status, _, err = run(capsys, "info", tmp_path)
    assert_one_line_error(status, err, "info")
    assert "not a regular file" in err
    big = tmp_path / "big.nic"
    big.write_bytes(bytes(2048))
    monkeypatch.setattr(data, "MAX_INPUT_BYTES", 1024)
    status, _, err = run(capsys, "jpeg", "decode", big, tmp_path / "o.png")
    assert_one_line_error(status, err, "jpeg")
    assert "larger than 1024 bytes" in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_a_missing_cuda_device_is_one_line(capsys, tmp_path, checkpoint, picture):
    status, _, err = run(capsys, "encode", picture, tmp_path / "x.nic", "--checkpoint", checkpoint, "--device", "cuda")
    assert_one_line_error(status, err, "encode")
    assert "no CUDA device" in err


def test_models_lists_the_zoo(capsys):
    status, out, _ = run(capsys, "models")
    assert status == 0 and "factorized-q1" in out and "not shipped" in out and "Kodak" not in out
    folder = zoo.weights_dir()  # a manifest that records a model's Kodak point, as a release does
    folder.mkdir()
    entry = {"name": "factorized-q4", "file": "factorized-q4.pt", "sha256": "0" * 64, "kodak": {"bpp": 0.61234, "psnr": 32.7}}
    (folder / zoo.MANIFEST_NAME).write_text(json.dumps({"format": 1, "models": [entry]}))
    status, out, _ = run(capsys, "models")
    assert status == 0 and out.splitlines()[4].endswith("  shipped  Kodak 0.6123 bpp, 32.70 dB")
    status, out, _ = run(capsys, "models", "--json")
    configured = [
        zoo.model_name(architecture, quality)
        for architecture, qualities in zoo.CONFIGURATIONS.items()
        for quality in qualities
    ]
    assert status == 0 and [entry["name"] for entry in json.loads(out)] == configured
    assert json.loads(out)[4]["kodak"] == {"bpp": 0.61234, "psnr": 32.7}


# --------------------------------------------------------------------------- training and evaluation


def test_train_then_resume_then_eval(capsys, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        save_image(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), photos / f"p{index}.png")
    base = ["train", "--out", tmp_path / "run", "--data", photos, "--N", 8, "--M", 12, "--batch-size", 1,
            "--patch-size", 32, "--no-progress", "--validation-patches", 1]  # fmt: skip
    status, out, _ = run(capsys, *base, "--steps", 2)
    assert status == 0 and "checkpoint.pt" in out
    status, _, _ = run(capsys, *base, "--steps", 3)
    assert status == 0
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log if '"train"' in line][-1] == 3
    status, _, err = run(capsys, *base, "--steps", 4, "--M", 16)
    assert_one_line_error(status, err, "train")
    status, _, err = run(capsys, *base, "--steps", 4, "--patch-size", 20)
    assert_one_line_error(status, err, "train")
    assert "multiple of 16" in err

    status, out, _ = run(
        capsys, "eval", photos, "--checkpoint", tmp_path / "run" / "checkpoint.pt", "--json"
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert status == 0 and len(result["points"][0]["images"]) == 3
    assert result["points"][0]["bpp"] > 0 and result["points"][0]["psnr"] > 0
    status, out, _ = run(  # the checkpoint records its λ, so --refine needs no --lmbda
        capsys, "eval", photos, "--checkpoint", tmp_path / "run" / "checkpoint.pt", "--refine", 2, "--json"
    )
    assert status == 0 and len(json.loads(out.strip().splitlines()[-1])["points"][0]["images"]) == 3
    status, _, err = run(capsys, "eval", photos, "--json")
    assert_one_line_error(status, err, "eval")
