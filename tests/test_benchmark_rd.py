"""benchmarks/rd.py: the neural codec's curves, the refined encoder's in worker processes too."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from nicbook import zoo


@pytest.fixture(scope="module")
def rd(benchmarks_importable):
    """``benchmarks/rd.py`` imported as the benchmark runs it."""
    return importlib.import_module("rd")


def test_refined_curves_are_the_same_from_worker_processes(rd, sample):
    """One curve per architecture, a refined one only for the architectures asked for, each point
    above the plain one of its model by the model's own measure; two worker processes of one thread
    write the same files as the benchmark's own process."""
    images = [np.ascontiguousarray(sample[100:164, 300:396])]
    serial = rd.neural_points(images, [], refine_steps=2, refine_architectures=("hyperprior",))
    parallel = rd.neural_points(images, [], refine_steps=2, refine_architectures=("hyperprior",), jobs=2)
    hyperprior = len(zoo.shipped("hyperprior"))
    assert len(serial[rd.refined_family("hyperprior")]) == hyperprior
    assert rd.refined_family("factorized") not in serial
    assert len(serial[rd.family("factorized")]) == len(serial[rd.STATIC]) == len(zoo.shipped("factorized"))
    assert serial[rd.refined_family("hyperprior")] != serial[rd.family("hyperprior")]
    assert parallel == serial
