"""NumPy's BLAS and OpenMP thread pools, as threadpoolctl reports them."""

from __future__ import annotations

from typing import Any


def blas_info() -> list[dict[str, Any]]:
    """One record per thread pool NumPy has loaded: user_api, internal_api (library), version,
    num_threads, architecture (the kernel OpenBLAS picked, which OPENBLAS_CORETYPE overrides) and
    filepath."""
    import numpy  # noqa: F401  (loads the BLAS so threadpoolctl can see it)
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "num_threads", "architecture", "filepath")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]
