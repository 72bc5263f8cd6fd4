"""A campaign: many cells, planned, run and recorded.

- ``command``: ``mlpbench run`` (select cells, run them through an executor, write the JSON).
- ``rounds``: the interleaved order of cells; ``precision``: more rounds where intervals are wide.
- ``executors``, ``slurm``: where a cell trains (this process, a fresh one, a Slurm job).
- ``resume``, ``fingerprint``: which finished cells of an earlier run can stand.
- ``conditions``: what the machine did while a cell ran; ``machine``, ``peaks``: machine facts.
- ``tune``, ``profile``: the tuned division; ``selftest``: the gate's error rates, measured.

Imports cells, the registry, results, scenarios, data and ``bench.stats``; never the report or
the CLI.
"""
