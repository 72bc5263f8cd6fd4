"""The NumPy backend: the shared manual-backprop engine bound to ``xp = numpy`` on the CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from backends._xp_backend import XpBackend

if TYPE_CHECKING:
    from types import ModuleType


class NumpyMLP(XpBackend):
    name = "numpy"
    device = "cpu"

    @staticmethod
    def unavailable_reason() -> str | None:
        return None

    def array_module(self) -> ModuleType:
        return np

    def synchronize(self) -> None:
        """Nothing to wait for: NumPy is synchronous."""

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "numpy": np.__version__}
