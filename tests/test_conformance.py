"""Every installed backend passes the conformance kit (``bench.conformance``), as a plug-in's
own tests would run it."""

from __future__ import annotations

from bench import registry
from bench.conformance import BackendConformance

#: What each in-tree backend's unavailable_reason() must leave unimported.
FRAMEWORKS = {
    "cupy": ("cupy",),
    "keras": ("tensorflow", "keras"),
    "keras-jax": ("jax", "keras"),
    "keras-torch": ("torch", "keras"),
    "torch": ("torch",),
    "jax": ("jax",),
}

for _name in registry.names():
    _class_name = "Test" + "".join(p.capitalize() for p in _name.replace("-", "_").split("_"))
    globals()[_class_name] = type(
        _class_name,
        (BackendConformance,),
        {"backend": _name, "framework_modules": FRAMEWORKS.get(_name, ())},
    )
