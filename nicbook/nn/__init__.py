"""The neural parts of nicbook, in PyTorch: one module per idea, in the order the chapters meet them.

==================================  ==========================================================
``nicbook.nn.ops``                  lower bound, non-negative parameters, precision, devices
``nicbook.nn.layers``               GDN, the analysis / synthesis and hyper transforms
``nicbook.nn.rounding``             rounding and its training proxies (noise, straight-through)
``nicbook.nn.entropy_models``       learned densities and Gaussian conditionals, symbols, tables
``nicbook.nn.models``               the autoencoder and the compressive models, ``rd_loss``
``nicbook.nn.integer``              the hyper-synthesis in exact fixed point, for coding
``nicbook.nn.tiling``               the transforms tile by tile, in memory bounded by a tile
``nicbook.nn.tensors``              images as tensors, random training patches
``nicbook.nn.config``               what defines a training run (plain Python, no torch)
``nicbook.nn.checkpoints``          checkpoint files and training logs
``nicbook.nn.training``             the training loop (CPU, GPU, ``torchrun``)
``nicbook.nn.latent_training``      a hyperprior's hyper path alone, on cached latents
==================================  ==========================================================

Importing this package imports none of its modules; loading a shipped model
(:func:`nicbook.zoo.load`) needs ``models`` and ``checkpoints`` only, never the training loop.
"""
