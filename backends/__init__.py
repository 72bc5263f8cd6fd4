"""The backends: each trains the same MLP its own way, behind the contract in ``backends.api``.

- ``api``: the public contract a backend (in this repository or a plug-in's) implements; the
  test kit every backend passes is ``bench.conformance``.
- ``xp``: THE manual-backprop MLP, written once against an array module ``xp``; ``numpy_mlp`` and
  ``cupy_mlp`` bind it to NumPy and CuPy.
- ``keras_mlp``, ``torch_mlp``, ``jax_mlp``: the framework peers, each as its users write it.
- ``device_time``: an epoch's and its steps' device time from GPU events (CuPy and PyTorch).

The harness finds backends through the entry-point group ``mlpbench.backends`` (``bench.registry``),
never by importing this package's modules by name.
"""
