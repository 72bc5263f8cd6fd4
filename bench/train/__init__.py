"""Training: scenarios and data → backends (through ``bench.registry``) → ``Result`` values.

- ``session``: one scenario × backend run, epoch by epoch (shared weights and batch order).
- ``timing``: the single definition of a timed region.
- ``initializers``: the initial weights every backend starts from.
- ``flops``: an epoch's matrix-product work and the machine's GEMM peak.
- ``machine``: the machine facts recorded beside every result.
- ``command``: ``mlpbench run`` (select, train, save JSON after every run, write tables).
"""
