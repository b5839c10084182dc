"""An interactive image viewer for live notebooks: a slider, a caption and the picture it picks.

The chapters show a static figure or animation in the built book and, beside it, a slider that
re-computes the picture for any setting when the notebook runs. :func:`slider_viewer` is that
widget. ipywidgets is imported only when a viewer is made, so ``nicbook.plot`` works without it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from nicbook.pillow_codecs import png_bytes

__all__ = ["slider_viewer"]


def slider_viewer(
    render: Callable[[Any], tuple[np.ndarray, str]],
    options: Sequence[Hashable],
    description: str,
    value: Hashable | None = None,
    zoom: int = 1,
    continuous_update: bool = False,
) -> Any:
    """A slider over ``options``, a caption and an image, kept up to date by ``render(value) -> (image, caption)``.

    An increasing ``range`` becomes an integer slider over it; any other sequence (model names,
    say) a selection slider. ``value`` is the first setting shown (default: the first option);
    ``zoom`` enlarges the image by repeating each pixel, ``continuous_update`` re-renders while
    the slider is dragged rather than when it is released. Returns the ``ipywidgets.VBox`` of
    slider, caption and image; ``IPython.display.display`` shows it.
    """
    try:
        import ipywidgets as widgets
    except ImportError as error:
        raise ImportError(
            "slider_viewer needs ipywidgets, which is not installed: pip install ipywidgets"
        ) from error
    if len(options) == 0:
        raise ValueError("a slider needs at least one option")
    if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom < 1:
        raise ValueError(f"zoom must be a positive integer, got {zoom!r}")
    value = options[0] if value is None else value
    if value not in options:
        raise ValueError(f"value {value!r} is not one of the options")
    common = {"value": value, "description": description, "continuous_update": continuous_update}
    if isinstance(options, range) and options.step > 0:
        slider = widgets.IntSlider(min=options.start, max=options[-1], step=options.step, **common)
    else:
        slider = widgets.SelectionSlider(options=list(options), **common)
    caption = widgets.Label()
    view = widgets.Image(format="png")

    def update(change: object = None) -> None:
        image, caption.value = render(slider.value)
        image = np.asarray(image)
        if zoom > 1:
            image = np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)
        view.value = png_bytes(image)

    update()
    slider.observe(update, names="value")
    return widgets.VBox([slider, caption, view])
