"""The neural parts of nicbook, in PyTorch: one module per idea, in the order the chapters meet them.

==================================  ==========================================================
``nicbook.nn.ops``                  lower bound, non-negative parameters, precision, devices
``nicbook.nn.layers``               GDN and the analysis / synthesis transforms
``nicbook.nn.rounding``             rounding and its training proxies (noise, straight-through)
``nicbook.nn.entropy_models``       the learned factorized density, latents ↔ symbols, its tables
``nicbook.nn.models``               the autoencoder and the compressive autoencoder, ``rd_loss``
``nicbook.nn.tensors``              images as tensors, random training patches
``nicbook.nn.checkpoints``          checkpoint files and training logs
``nicbook.nn.training``             the training loop (CPU, GPU, ``torchrun``)
==================================  ==========================================================

Importing this package imports none of its modules; loading a shipped model
(:func:`nicbook.zoo.load`) needs ``models`` and ``checkpoints`` only, never the training loop.
"""
