"""The results: the one thing that crosses from training to reporting.

- ``record``: the immutable values a run produces (``Result``, ``EpochRecord``).
- ``write``: those values → JSON in pytest-benchmark's shape (the producing side).
- ``schema``: the JSON's schema version and the type of every field the reports read.
- ``read``: JSON files → validated cells (the reporting side reads only this, never a backend).
"""
