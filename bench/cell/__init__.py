"""One cell in one process: a backend × scenario × seed trained epoch by epoch.

- ``spec``: ``CellSpec``, what to train — plain data that travels as JSON to another process.
- ``session``: the training itself (shared initial weights and batch order, timed epochs,
  untimed evaluation) → a ``Result``.
- ``timing``: the single definition of a timed region.
- ``initializers``: the initial weights every backend starts from.
- ``threads``: the thread budget a worker sets before any framework loads, and the thread count.
- ``worker``: ``python -m bench.cell.worker``, the process executor's child.
- ``probe``: ``python -m bench.cell.probe``, a backend asked questions in a fresh process.

May import: backends (through ``bench.registry`` and ``backends.api``), scenarios, data, the
results values and ``bench.stats``; never the campaign, the report or the CLI.
"""
