"""benchmarks/neural.py: the alternating training timer, the peak-memory probe, CompressAI given
nicbook's weights (where compressai imports), and the benchmark's output without CompressAI."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nicbook import codec, zoo
from nicbook.metrics import psnr

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def neural(benchmarks_importable):
    """``benchmarks/neural.py`` imported as the benchmark runs it."""
    return importlib.import_module("neural")


def test_training_steps_warm_up_then_alternate(neural):
    timing = importlib.import_module("timing")
    calls = []
    steps = {name: lambda batch, name=name: calls.append((name, tuple(batch.shape))) for name in ("a", "b")}
    seconds = timing.alternate_training(steps, 5)
    assert set(seconds) == {"a", "b"} and all(value >= 0 for value in seconds.values())
    assert [name for name, _ in calls] == ["a", "b"] * 6  # one warm-up each, then 5 rounds in turn
    assert {shape for _, shape in calls} == {(8, 3, 128, 128)}


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's clear_refs")
def test_peak_counts_an_allocation_freed_before_the_reset_again(neural):
    block = np.ones(40 << 20, dtype=np.uint8)
    del block
    neural.reset_peak_rss()
    before = neural.peak_rss_bytes()
    block = np.ones(40 << 20, dtype=np.uint8)
    del block
    assert neural.peak_rss_bytes() - before >= 35 << 20


def test_compressai_codes_the_same_integer_latents(neural, sample):
    peer, reason = neural.import_peer()
    if peer is None:
        pytest.skip(f"compressai does not import here: {reason}")
    model = zoo.load("factorized", 2)
    peer_model = peer.from_nicbook(model)
    image = sample[:120, :200]  # padded to 128×208 by both
    _, symbols, _ = codec.decode_latents(codec.compress(image, model), model)
    stream = peer.encode(peer_model, image)
    assert np.array_equal(peer.latent_symbols(peer_model, stream), symbols)
    theirs, ours = peer.decode(peer_model, stream), codec.decompress(codec.compress(image, model), model)
    assert theirs.shape == image.shape
    assert np.abs(theirs.astype(int) - ours).max() <= 1
    assert psnr(image, theirs) == pytest.approx(psnr(image, ours), abs=0.01)


@pytest.mark.slow
def test_benchmark_reports_nicbook_and_compressai_or_why_not(neural):
    finished = subprocess.run(
        [sys.executable, str(BENCHMARKS / "neural.py"), "--images", "1", "--qualities", "2", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    (figures,) = result["qualities"]
    assert figures["nicbook"]["size_target_met"]
    for key in ("encode_s", "decode_s", "train_step_s", "encode_peak_bytes", "decode_peak_bytes", "train_step_peak_bytes"):
        assert figures["nicbook"][key] > 0
    if neural.import_peer()[0] is None:
        assert result["compressai"].startswith("skipped: ")
        assert "CompressAI skipped" in finished.stdout and "compressai" not in figures
    else:
        assert figures["latents_identical"]
        assert set(figures["ratios_nicbook_over_compressai"]) == set(neural.COMPARED)
