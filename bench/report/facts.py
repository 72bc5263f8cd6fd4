"""The Machines table of results.md: one column per machine, its recorded facts as text."""

from __future__ import annotations

from typing import Any

import pandas as pd


def machine_facts_table(machines: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows fact, one column per machine_id: CPU, BLAS, packages, env, GPUs, Python."""
    return pd.DataFrame({m: _facts(info) for m, info in machines.items()}).rename_axis("fact")


def _facts(info: dict[str, Any]) -> dict[str, str]:
    facts = info.get("mlpbench") if isinstance(info.get("mlpbench"), dict) else None
    python = f"{info.get('python_implementation', '')} {info.get('python_version', '?')}"
    if facts is None:
        cpu = (info.get("cpu") or {}).get("brand_raw", "?")
        return {
            "CPU model": cpu,
            "logical CPUs": str((info.get("cpu") or {}).get("count", "?")),
            "BLAS": "not recorded (no mlpbench machine facts in this file)",
            "Python": python,
        }
    return {
        "CPU model": str(facts.get("cpu_model", "?")),
        "logical CPUs": str(facts.get("logical_cpus", "?")),
        "BLAS": "; ".join(_blas(p) for p in facts.get("blas") or []) or "none found",
        "packages": ", ".join(f"{k} {v}" for k, v in (facts.get("packages") or {}).items()),
        "env": ", ".join(f"{k}={v}" for k, v in (facts.get("env") or {}).items()) or "none set",
        "GPUs": "; ".join(_gpu(g) for g in facts.get("gpus") or []) or "none",
        "Python": python.strip(),
        "system": f"{info.get('system', '?')} {info.get('release', '')}".strip(),
    }


def _blas(pool: dict[str, Any]) -> str:
    return (
        f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')}, "
        f"{pool.get('num_threads')} threads)"
    )


def _gpu(gpu: dict[str, Any]) -> str:
    rest = ", ".join(f"{k} {v}" for k, v in gpu.items() if k != "name")
    return f"{gpu.get('name', 'GPU')} ({rest})" if rest else str(gpu.get("name", "GPU"))
