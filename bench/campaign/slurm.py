"""The ``slurm`` executor: every cell a Slurm job, submitted through submitit (the ``slurm``
extra), all at once; the cells then train on the cluster's nodes while this process follows
their progress and gathers each result as its job ends.

A job trains its cell in the job's own process (as the ``process`` executor's worker does, with
the same progress lines on the job's stdout, which this side reads to show every epoch) and
returns the ``Result`` beside the facts of the node it ran on: ``machine_info()`` computed there,
the Slurm job id and the host name. A job that fails, times out or is cancelled becomes a failed
``Result`` (``failed`` = one line such as "slurm job 12 CANCELLED"), keeping the epochs its log
shows; the other cells are not affected. Ctrl-C cancels the jobs that have not finished and
records the finished epochs of the running ones, as a local run does.

Results from different nodes carry different machine facts, and a results document has one
``machine_info``: ``write_by_machine`` writes one document per machine (``--out`` for the first,
``<stem>.<machine_id>.json`` beside it for each other), which ``mlpbench table`` reads as separate
machines.

submitit is imported only when a Slurm executor is made, so this module imports without it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bench.cell.spec import CellSpec, EpochCallback
from bench.cell.worker import MARK
from bench.errors import ConfigError
from bench.results.record import EpochRecord, Result

#: Called once per cell as soon as its job has ended (or, at Ctrl-C, been cancelled).
DoneCallback = Callable[[CellSpec, Result], None]

#: Slurm job states after which a job will not run again.
FINAL_STATES = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "TIMEOUT",
}
#: Seconds to wait for a COMPLETED job's result file (a shared file system may lag).
RESULT_GRACE_S = 30.0
#: Seconds a job may be unknown to both squeue and sacct before it counts as gone.
VANISHED_S = 120.0
#: The facts each job reports beside its Result; in the Result and extra_info when record.py has
#: them as fields, and added to the JSON entries by ``write_by_machine`` in any case.
JOB_FACTS = ("slurm_job_id", "hostname")


# --- on the node ---------------------------------------------------------------------------------


def train_job(cell_dict: dict[str, Any]) -> dict[str, Any]:
    """The job's function: train the cell in this process; return the Result (or the one-line
    reason it failed) with this node's machine facts, job id and host name. Progress goes to
    stdout in the worker's protocol (``data`` then one ``epoch`` line per finished epoch)."""
    import resource
    import socket

    from bench.cell.threads import apply

    if cell_dict["options"].get("threads"):  # before the cell's framework loads
        apply(cell_dict["options"]["threads"])

    from bench.campaign.machine import machine_info
    from bench.cell.worker import train_reporting

    reply: dict[str, Any] = {
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }
    try:
        reply["machine_info"] = machine_info()  # before training, as a local run measures it
        reply["result"] = train_reporting(CellSpec.from_dict(cell_dict)).to_dict()
    except BaseException as err:  # one line for the submitting side, never a traceback
        text = str(err).strip().splitlines()
        reply["failed"] = f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")
    reply["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return reply


# --- on the submitting side ----------------------------------------------------------------------


@dataclass
class _Job:
    """One submitted cell: its submitit job and what its log has shown so far."""

    cell: CellSpec
    job: Any
    history: list[EpochRecord] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)
    offset: int = 0
    state: str = "PENDING"
    node: str = ""
    completed_at: float | None = None
    unknown_since: float | None = None

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)


class Slurm:
    """Each cell one Slurm job (submitit's ``AutoExecutor`` on ``folder``). ``partition``,
    ``account``, ``gpus_per_node``, ``cpus_per_task``, ``mem_gb`` and ``timeout_min`` go to
    sbatch; ``exclusive`` (default) gives each cell its node alone, so cells sharing a node do
    not slow each other down; ``additional`` holds any other sbatch options (``{"qos": "high"}``
    → ``--qos=high``). ``folder`` (job scripts, logs, pickled results) must be on a file system
    the nodes share with this machine. ``poll_s``: seconds between looks at the jobs."""

    name = "slurm"

    def __init__(
        self,
        folder: str | os.PathLike = "mlpbench-results/slurm",
        *,
        partition: str | None = None,
        account: str | None = None,
        gpus_per_node: int = 0,
        cpus_per_task: int | None = None,
        mem_gb: float | None = None,
        timeout_min: int = 60,
        exclusive: bool = True,
        additional: dict[str, Any] | None = None,
        poll_s: float = 2.0,
    ) -> None:
        import shutil

        try:
            import submitit
        except ImportError:
            raise ConfigError(
                "the slurm executor needs submitit: pip install 'mlpbench[slurm]'"
            ) from None
        if shutil.which("sbatch") is None:
            raise ConfigError("the slurm executor needs Slurm here: sbatch is not on PATH")
        self.folder = Path(folder)
        self.poll_s = poll_s
        #: (cell, Slurm job id) of every job submitted, in order
        self.submitted: list[tuple[CellSpec, str]] = []
        #: (result, its node's machine facts or None, its job facts) of every result made
        self.machines: list[tuple[Result, dict[str, Any] | None, dict[str, Any]]] = []
        # the cell's process is the batch script's own (no srun step): it has every CPU of the
        # job's allocation whatever the cluster's task plugin binds a step to
        params: dict[str, Any] = {"timeout_min": timeout_min, "slurm_use_srun": False}
        for key, value in {
            "slurm_partition": partition,
            "slurm_account": account,
            "gpus_per_node": gpus_per_node or None,
            "cpus_per_task": cpus_per_task,
            "mem_gb": mem_gb,
            "slurm_exclusive": True if exclusive else None,
            "slurm_additional_parameters": dict(additional) if additional else None,
        }.items():
            if value is not None:
                params[key] = value
        self._executor = submitit.AutoExecutor(folder=self.folder, cluster="slurm")
        self._executor.update_parameters(**params)

    @classmethod
    def from_args(cls, args: Any) -> Slurm:
        """From ``mlpbench run``'s options (``--slurm-*``; absent ones take the defaults)."""
        extra = {}
        for text in getattr(args, "slurm_option", None) or []:
            key, sep, value = text.partition("=")
            extra[key.strip().lstrip("-").replace("-", "_")] = value.strip() if sep else True
        out = Path(getattr(args, "out", "mlpbench-results/run.json"))
        options = {
            "partition": getattr(args, "slurm_partition", None),
            "account": getattr(args, "slurm_account", None),
            "gpus_per_node": getattr(args, "slurm_gpus", None) or 0,
            "cpus_per_task": getattr(args, "slurm_cpus", None),
            "timeout_min": getattr(args, "slurm_timeout_min", None) or 60,
            "additional": extra or None,
        }
        return cls(out.parent / "slurm", **options)  # beside the results, on the shared disk

    # -- the executor interface --

    def run(self, cell: CellSpec, on_epoch: EpochCallback | None = None) -> Result:
        """One cell: submit it and wait for it."""
        done: list[Result] = []
        self.run_many([cell], lambda c, r: done.append(r), on_epoch)
        return done[0]

    def run_many(
        self,
        cells: Sequence[CellSpec],
        on_done: DoneCallback,
        on_epoch: EpochCallback | None = None,
    ) -> list[Result]:
        """Submit every cell at once, then follow them: ``on_epoch`` for each finished epoch,
        ``on_done(cell, result)`` as each job ends (in the order they end). Ctrl-C cancels the
        jobs still queued or running, passes the running ones' finished epochs to ``on_done``
        (marked incomplete) and re-raises."""
        pending: list[_Job] = []  # submitted, not yet ended
        finished: list[Result] = []
        try:
            for cell in cells:
                pending.append(_Job(cell, self._submit(cell, pending)))
                self.submitted.append((cell, pending[-1].job_id))
                print(f"  [{cell.label}] slurm job {pending[-1].job_id} submitted", flush=True)
            while pending:
                states = _states([j.job_id for j in pending])
                for j in list(pending):
                    self._follow(j, states, on_epoch)
                    result = self._outcome(j)
                    if result is not None:
                        pending.remove(j)
                        finished.append(result)
                        on_done(j.cell, result)
                if pending:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            for j in pending:
                j.job.cancel(check=False)
            for j in pending:
                self._read_log(j, None)
                result = self._interrupted(j)
                if result is not None:
                    finished.append(result)
                    on_done(j.cell, result)
            raise
        return finished

    def _submit(self, cell: CellSpec, submitted: list[_Job]) -> Any:
        """sbatch one cell; when that fails, cancel the cells already submitted and say why."""
        self._executor.update_parameters(name=f"mlpbench-{cell.backend}-{cell.scenario.name}")
        try:
            return self._executor.submit(train_job, cell.to_dict())
        except Exception as err:
            for j in submitted:
                j.job.cancel(check=False)
            lines = [x.strip() for x in str(err).splitlines() if x.strip()]
            why = next((x for x in lines if "error" in x.lower()), lines[-1] if lines else "")
            raise ConfigError(
                f"sbatch failed for {cell.label}: {why or type(err).__name__}"
            ) from None

    def machine_of(self, result: Result) -> dict[str, Any] | None:
        """The machine facts of the node ``result`` was trained on (None when its job ended
        before reporting them: cancelled, killed, never started)."""
        return next((m for r, m, _ in self.machines if r is result), None)

    def job_facts_of(self, result: Result) -> dict[str, Any]:
        """``{"slurm_job_id", "hostname"}`` of the job that trained ``result`` (as known)."""
        return next((dict(f) for r, _, f in self.machines if r is result), {})

    # -- following the jobs --

    def _follow(self, j: _Job, states: dict[str, tuple[str, str]] | None, on_epoch) -> None:
        """Update the job's state (``states``: squeue's answer, None when it could not be had)
        and read its log."""
        state = (states or {}).get(j.job_id)
        if state is not None:
            old = j.state
            j.state, j.node, j.unknown_since = state[0], state[1] or j.node, None
            if j.state == "RUNNING" and old != "RUNNING":
                where = f" on {j.node}" if j.node else ""
                print(f"  [{j.cell.label}] slurm job {j.job_id} running{where}", flush=True)
        elif states is not None and j.state not in FINAL_STATES:
            # no longer listed by squeue: ask submitit (sacct, where accounting is on)
            sacct = str(j.job.state or "UNKNOWN").split()[0].upper()
            if sacct in FINAL_STATES:
                j.state = sacct
            else:
                j.unknown_since = j.unknown_since or time.monotonic()
                if time.monotonic() - j.unknown_since > VANISHED_S:
                    j.state = "GONE"
        self._read_log(j, on_epoch)

    def _read_log(self, j: _Job, on_epoch) -> None:
        """New complete protocol lines of the job's stdout → history / sizes / settings."""
        try:
            with open(j.job.paths.stdout, "rb") as f:
                f.seek(j.offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1
        j.offset += end
        for raw in chunk[:end].decode("utf-8", "replace").splitlines():
            if not raw.startswith(MARK):
                continue  # submitit's and the frameworks' own lines stay in the log file
            kind, _, payload = raw[len(MARK) :].partition(" ")
            try:
                data = json.loads(payload)
            except ValueError:
                continue
            if kind == "epoch":
                if "settings" in data:
                    j.outcome["settings"] = data.pop("settings")
                record = EpochRecord(**data)
                j.history.append(record)
                if on_epoch is not None:
                    on_epoch(j.cell, record)
            elif kind == "data":
                j.outcome["sizes"] = data

    def _outcome(self, j: _Job) -> Result | None:
        """The cell's Result once its job has ended, else None."""
        if j.job.paths.result_pickle.exists():
            try:
                reply = j.job.result()
            except Exception as err:  # the job function raised, or its result is unreadable
                lines = [x for x in str(err).splitlines() if x.strip() and not x.startswith("-")]
                why = lines[-1].strip() if lines else type(err).__name__
                return self._failed(j, f"slurm job {j.job_id} failed: {why}")
            return self._from_reply(j, reply)
        if j.state == "GONE":
            return self._failed(
                j, f"slurm job {j.job_id} is gone (neither squeue nor sacct know it)"
            )
        if j.state not in FINAL_STATES:
            return None
        if j.state == "COMPLETED":  # its result file may still be on its way
            j.completed_at = j.completed_at or time.monotonic()
            if time.monotonic() - j.completed_at < RESULT_GRACE_S:
                return None
            return self._failed(j, f"slurm job {j.job_id} COMPLETED without a result")
        return self._failed(j, f"slurm job {j.job_id} {j.state}")

    def _from_reply(self, j: _Job, reply: dict[str, Any]) -> Result:
        facts = {k: reply.get(k) for k in JOB_FACTS}
        facts["slurm_job_id"] = facts["slurm_job_id"] or j.job_id
        measured = {"pid": reply.get("pid"), "peak_rss_bytes": reply.get("peak_rss_bytes")}
        if "result" in reply:
            result = replace(Result.from_dict(reply["result"]), **measured)
        else:
            result = self._partial(j, reply.get("failed") or "no result", measured)
        return self._keep(result, reply.get("machine_info"), facts)

    def _failed(self, j: _Job, reason: str) -> Result:
        self._read_log(j, None)
        facts = {"slurm_job_id": j.job_id, "hostname": _short(j.node) or None}
        return self._keep(self._partial(j, reason, {}), None, facts)

    def _interrupted(self, j: _Job) -> Result | None:
        """At Ctrl-C: a running job's finished epochs (incomplete, not failed); a started one
        with none is failed; one still queued is left out, as a local run leaves later cells."""
        if j.history:
            reason = None
        elif j.state == "RUNNING" or "sizes" in j.outcome:
            reason = "interrupted before its first epoch finished"
        else:
            return None
        facts = {"slurm_job_id": j.job_id, "hostname": _short(j.node) or None}
        return self._keep(self._partial(j, reason, {}), None, facts)

    def _partial(self, j: _Job, reason: str | None, measured: dict[str, Any]) -> Result:
        return Result(
            backend=j.cell.backend,
            scenario=j.cell.scenario,
            history=tuple(j.history),
            complete=False,
            failed=reason,
            settings=j.outcome.get("settings", {}),
            **j.outcome.get("sizes", {}),
            **measured,
        )

    def _keep(self, result: Result, machine: dict[str, Any] | None, facts: dict) -> Result:
        """Record the node's facts beside ``result`` (and in it, where Result has the fields)."""
        own = {f.name for f in fields(Result)}
        result = replace(result, **{k: v for k, v in facts.items() if k in own})
        self.machines.append((result, machine, facts))
        return result


def _short(node: str) -> str:
    return "" if node in ("", "(null)", "None assigned") else node


def _states(job_ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """{job id: (state, node list)} as squeue shows them (finished jobs too, while the
    controller keeps them: MinJobAge, 300 s by default); jobs it no longer knows are absent.
    None when squeue could not answer (the controller busy or restarting)."""
    if not job_ids:
        return {}
    try:
        done = subprocess.run(
            [
                "squeue",
                "--noheader",
                "--states=all",
                f"--jobs={','.join(job_ids)}",
                "--format=%i|%T|%N",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:  # all of them unknown is an error to squeue
        return {} if "invalid job id" in done.stderr.lower() else None
    states = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1].split()[0].upper() if parts[1] else "UNKNOWN", parts[2])
    return states


# --- one results JSON per machine ----------------------------------------------------------------


def write_by_machine(
    out: Path,
    done: list[Result],
    executor: Slurm,
    fallback_machine: dict[str, Any],
    commit: dict[str, Any] | None,
) -> list[Path]:
    """Write ``done`` grouped by the machine each result was trained on: the first machine to
    finish a cell (or ``fallback_machine``, this one, when none has) to ``out``, every other to
    ``<stem>.<machine_id><suffix>`` beside it. Results without machine facts (jobs cancelled or
    killed before reporting) go to ``out``. Each entry's ``extra_info`` gets ``slurm_job_id`` and
    ``hostname``. Returns the files written, ``out`` first."""
    from bench.results import write as results

    groups: dict[str, tuple[dict[str, Any], list[Result]]] = {}
    homeless: list[Result] = []
    for result in done:
        machine = executor.machine_of(result)
        if machine is None:
            homeless.append(result)
            continue
        key = _machine_id(machine)
        groups.setdefault(key, (machine, []))[1].append(result)
    if not groups:
        groups[_machine_id(fallback_machine)] = (fallback_machine, [])
    first = next(iter(groups))
    groups[first][1].extend(homeless)
    written = []
    for key, (machine, members) in groups.items():
        path = out if key == first else out.with_name(f"{out.stem}.{_slug(key)}{out.suffix}")
        doc = results.document(members, machine, commit)
        _add_job_facts(doc, members, executor)
        results.write_json_atomic(path, doc)
        written.append(path)
    return written


def _add_job_facts(doc: dict[str, Any], members: list[Result], executor: Slurm) -> None:
    """``slurm_job_id`` and ``hostname`` into each entry (document() keeps the results' order:
    those with epochs become benchmarks[], the others mlpbench.skipped[])."""
    ran = [r for r in members if r.history]
    idle = [r for r in members if not r.history]
    for entry, result in zip(doc["benchmarks"], ran, strict=True):
        entry["extra_info"].update(executor.job_facts_of(result))
    for entry, result in zip(doc["mlpbench"]["skipped"], idle, strict=True):
        entry.update(executor.job_facts_of(result))


def _machine_id(machine: dict[str, Any]) -> str:
    facts = machine.get("mlpbench") if isinstance(machine.get("mlpbench"), dict) else {}
    return str(facts.get("machine_id") or machine.get("node") or "machine")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "machine"
