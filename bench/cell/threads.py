"""``mlpbench run --threads N``: one thread budget for every framework, set where each reads it.

Frameworks size their thread pools when they load, from the environment: NumPy's BLAS and
PyTorch's intra-op pool (OpenMP / OpenBLAS / MKL variables), TensorFlow's op pools
(``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``), XLA:CPU (``XLA_FLAGS``, which can only
switch its Eigen pool to one thread). So the worker process sets them before it imports anything
that could load a framework (``apply``), and backends apply the rest at build time (PyTorch's
inter-op pool, tf.data's private pool). This module imports nothing but ``os`` and ``re``.
"""

from __future__ import annotations

import os
import re

#: Variables read at load time, set to N.
COUNT_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
#: XLA:CPU has no thread-count variable; with N = 1 its Eigen pool is switched off.
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def environment(threads: int) -> dict[str, str]:
    """The variables ``apply(threads)`` sets."""
    env = dict.fromkeys(COUNT_VARIABLES, str(threads))
    if threads == 1:
        env["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), XLA_ONE_THREAD]))
    return env


def apply(threads: int) -> None:
    """Set the environment for a thread budget of ``threads`` in this process (before any
    framework loads: call it first thing in a fresh process)."""
    os.environ.update(environment(threads))


def process_threads() -> int | None:
    """This process's thread count (Linux), e.g. a framework's pools once they started."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            match = re.search(r"^Threads:\s+(\d+)", f.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None
