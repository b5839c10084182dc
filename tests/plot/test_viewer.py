"""The chapters' slider viewer: a slider, a caption and the picture ``render`` makes for its value."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nicbook.plot.viewer import slider_viewer


def picture(value: int) -> np.ndarray:
    """A 3×4 RGB image that differs for every value."""
    return np.full((3, 4, 3), value * 20, dtype=np.uint8) + np.arange(4, dtype=np.uint8)[None, :, None]


def render(value):
    return picture(value), f"caption {value}"


def shown(view) -> np.ndarray:
    with Image.open(io.BytesIO(view.value)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_an_integer_range_gives_an_integer_slider_that_redraws():
    widgets = pytest.importorskip("ipywidgets")
    box = slider_viewer(render, range(1, 9, 2), "k", value=3)
    slider, caption, view = box.children
    assert isinstance(slider, widgets.IntSlider)
    assert (slider.min, slider.max, slider.step, slider.value) == (1, 7, 2, 3)
    assert slider.description == "k" and not slider.continuous_update
    assert caption.value == "caption 3"
    np.testing.assert_array_equal(shown(view), picture(3))
    slider.value = 7
    assert caption.value == "caption 7"
    np.testing.assert_array_equal(shown(view), picture(7))


def test_other_options_give_a_selection_slider_starting_at_the_first():
    widgets = pytest.importorskip("ipywidgets")
    names = ["small", "medium", "large"]
    values = {"small": 1, "medium": 2, "large": 3}
    box = slider_viewer(lambda name: (picture(values[name]), name.upper()), names, "model",
                        continuous_update=True)
    slider, caption, view = box.children
    assert isinstance(slider, widgets.SelectionSlider)
    assert list(slider.options) == names and slider.value == "small" and slider.continuous_update
    assert caption.value == "SMALL"
    slider.value = "large"
    assert caption.value == "LARGE"
    np.testing.assert_array_equal(shown(view), picture(3))


def test_zoom_repeats_every_pixel():
    pytest.importorskip("ipywidgets")
    _, _, view = slider_viewer(render, range(5), "k", value=2, zoom=3).children
    image = shown(view)
    assert image.shape == (9, 12, 3)
    np.testing.assert_array_equal(image[::3, ::3], picture(2))
    np.testing.assert_array_equal(image[2::3, 1::3], picture(2))


def test_gray_images_are_shown_too():
    pytest.importorskip("ipywidgets")
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 10
    _, _, view = slider_viewer(lambda value: (gray, "gray"), [0], "k", zoom=2).children
    np.testing.assert_array_equal(shown(view)[::2, ::2, 0], gray)


def test_bad_arguments_are_refused():
    pytest.importorskip("ipywidgets")
    with pytest.raises(ValueError, match="options"):
        slider_viewer(render, range(1, 5), "k", value=9)
    with pytest.raises(ValueError, match="option"):
        slider_viewer(render, [], "k")
    with pytest.raises(ValueError, match="zoom"):
        slider_viewer(render, range(1, 5), "k", zoom=0)


def test_a_missing_ipywidgets_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` fail
    with pytest.raises(ImportError, match="ipywidgets"):
        slider_viewer(render, range(3), "k")


def test_importing_the_viewer_does_not_import_ipywidgets():
    code = "import sys, nicbook.plot.viewer; assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_viewer_works_with_the_ipywidgets_7_that_colab_ships(tmp_path):
    """Colab has ipywidgets 7 already imported: the package must work with it, no upgrade needed."""
    target = tmp_path / "ipywidgets7"
    unpinned = {key: value for key, value in os.environ.items() if key != "PIP_CONSTRAINT"}  # CI pins 8.x
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         "ipywidgets==7.7.1", "ipython_genutils==0.2.0"],
        capture_output=True, text=True, timeout=300, env=unpinned,
    )
    if install.returncode != 0:
        pytest.skip(f"could not install ipywidgets 7 from the package index: {install.stderr.strip()[-200:]}")
    script = (
        "import ipywidgets, numpy as np\n"
        "assert ipywidgets.__version__.startswith('7.'), ipywidgets.__version__\n"
        "from nicbook.plot.viewer import slider_viewer\n"
        "box = slider_viewer(lambda v: (np.full((4, 4, 3), 10 * v, np.uint8), f'v={v}'), range(1, 5), 'k')\n"
        "slider, caption, view = box.children\n"
        "slider.value = 3\n"
        "assert caption.value == 'v=3' and view.value[:4] == b'\\x89PNG'\n"
        "box = slider_viewer(lambda v: (np.zeros((2, 2, 3), np.uint8), v), ['a', 'b'], 'model')\n"
        "box.children[0].value = 'b'\n"
        "assert box.children[1].value == 'b'\n"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120)
    assert run.returncode == 0, run.stderr
