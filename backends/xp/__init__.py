"""The manual-backprop MLP written once against an array module ``xp`` (NumPy or CuPy).

- ``engine``: forward, backward and the epoch loop over flat parameter buffers.
- ``optimizers``: SGD, Adam and RMSprop with Keras 3's exact formulas.
- ``backend``: the ``backends.api`` contract implemented once over the engine.
- ``denormals``: flush-to-zero for the CPU's floating-point unit.
- ``blas``: NumPy's BLAS thread pools, as threadpoolctl sees them.
"""
