"""The PyTorch backend: the same MLP as a PyTorch user writes it, trained by an explicit loop.

Model: ``nn.Sequential`` of ``nn.Linear`` + ``nn.ReLU`` (+ ``nn.Dropout``) per hidden width and a
final ``nn.Linear``; loss ``nn.CrossEntropyLoss()`` on the logits (the mean categorical
cross-entropy of the softmax). Each step gathers its rows with ``index_select`` from tensors put
on the device once in ``build``, runs forward, ``loss.backward()`` and the update. Weights come
from the harness in Keras order (kernels (in, out)); ``nn.Linear.weight`` is (out, in), so
kernels are copied transposed in and out. The recipe's dtype is used end to end.

The update, as PyTorch users make it (option ``optimizer``, default ``DEFAULT_OPTIMIZER``):
- ``torch`` (shipped): ``torch.optim.SGD``, ``Adam`` or ``RMSprop`` constructed from the recipe's
  values (``lr``, ``betas=(β1, β2)``, ``alpha=ρ``, ``eps=ε``), ``zero_grad()`` and ``step()`` per
  batch, its ``foreach``/``fused`` choice left to torch unless option ``fused`` asks. Its Adam and
  RMSprop place ε differently from Keras 3's (``FORMULA_DEPARTURES``): ``torch.optim.Adam`` steps
  ``lr·m̂/(√v̂ + ε)``, i.e. Keras' step with ε·√(1 − β2ᵗ) in place of ε; ``torch.optim.RMSprop``
  divides by ``√v + ε`` where Keras divides by ``√(v + ε)``. ``settings()`` records the
  departure (``optimizer_formula``, only where there is one); the results state it.
- ``keras-formula``: Keras' formulas (``backends/xp/optimizers.py``), literally and in Keras'
  operation order, in torch ops under ``no_grad`` (``_KerasFormula``): what the agreement suite
  and the conformance kit need, since after one epoch at ε = 1e-3 torch.optim's weights differ
  from Keras' by a large fraction of how far they moved (``EXACT_FORMULAS`` names this option).
  It dispatches as torch.optim does by default: ``torch._foreach_*`` ops over the parameter list
  for CUDA tensors, one op per parameter on the CPU.

Choices, all recorded by ``settings()`` (measured figures: results/README.md):
- ``fused``: ``auto`` (``DEFAULT_FUSED``), resolved in ``__init__`` to ``foreach`` on CUDA and
  ``loop`` on the CPU, as torch.optim resolves ``foreach=None``; ``foreach`` (multi-tensor ops,
  fewer dispatches) or ``loop`` (one op per parameter) force one; ``fused`` (``torch`` optimizer
  only) asks torch.optim for its fused kernel. ``settings()["fused"]`` records the resolved value.
- ``threads``: ``torch.set_num_threads`` during training and evaluation, restored afterwards;
  default the harness's ``--threads`` budget if given, else torch's own (one per core).
- ``flush_denormals``: ``torch.set_flush_denormal(True)`` during training epochs, switched off
  again afterwards (torch's default). Adam's decaying moments pass through the denormal range,
  which some x86 CPUs compute on slowly. Off by default (``DEFAULT_FLUSH_DENORMALS``), as PyTorch
  ships (a tuned profile may switch it on); CPU only. It acts on the calling thread only; torch's
  worker threads keep theirs.
- ``compile``: ``torch.compile`` of the whole step (dynamo breaks the graph at ``backward``;
  inductor, which on the CPU needs a C++ compiler and on CUDA triton, else ``build`` refuses the
  recipe). Off by default (``DEFAULT_COMPILE``); its compilation lands in the cold epoch.
  Inductor draws its own dropout masks.
- ``cuda_graphs`` (CUDA only, off by default): the full-batch step — gather, forward, backward,
  update, metrics — captured once into a ``torch.cuda.CUDAGraph`` in the first epoch and replayed
  per batch from static index and step-size buffers; the last, partial batch runs eagerly. NOT
  YET RUN ON A GPU: written without access to one.
- ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``. TF32 follows ``RunOptions.tf32``
  (process-wide torch flags, off by default).

Per-epoch loss and accuracy are accumulated in device tensors (nothing synchronizes the host
inside an epoch) and returned as 0-d tensors; the harness reads them with ``float()``. On CUDA a
timing event is recorded before the first step and after each (``backends.device_time``): the
epoch's and every step's device time, read after the clock stops.
Dropout masks are PyTorch's own: its default generator as ``torch.manual_seed(recipe.seed)``
leaves it, swapped in for this instance's epochs and out again (instances never share a stream).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from backends.api import (
    EpochMetrics,
    Evaluation,
    OptionError,
    Recipe,
    RecipeUnsupported,
    RunOptions,
    TrainData,
    Weights,
    parse_bool,
    parse_choice,
    parse_positive_int,
)
from backends.device_time import GPU_PEAK_REPEATS, GPU_PEAK_SIZE, StepMarks, gpu_gemm_peaks

if TYPE_CHECKING:
    from types import ModuleType

    import torch

#: Defaults as PyTorch ships them (the shipped division): eager, torch.optim's own choice of
#: the multi-tensor update (foreach on CUDA tensors, a per-parameter loop on the CPU: "auto"),
#: denormals as the CPU handles them. Tuned values come from ``mlpbench tune``.
DEFAULT_COMPILE = False
DEFAULT_OPTIMIZER = "torch"
DEFAULT_FUSED = "auto"
#: What torch.optim's ``foreach=None`` resolves to per device (multi-tensor ops on CUDA only).
DEFAULT_FUSED_RESOLVED = {"gpu": "foreach", "cpu": "loop"}
DEFAULT_FLUSH_DENORMALS = False
#: Rows per chunk in ``evaluate`` (inference only).
EVAL_BATCH_SIZE = 10_000

_DTYPES = ("float32", "float64")

#: Where the shipped update (torch.optim) departs from Keras 3's formulas, per recipe optimizer.
FORMULA_DEPARTURES = {
    "adam": "torch.optim.Adam adds ε after the bias correction, lr·m̂/(√v̂ + ε); Keras adds it "
    "before, so Keras' ε acts as ε/√(1 − β2ᵗ)",
    "rmsprop": "torch.optim.RMSprop divides by √v + ε; Keras by √(v + ε)",
}
#: The options under which every update is Keras 3's formula (agreement suite, conformance kit).
EXACT_FORMULAS = {"optimizer": "keras-formula"}


class _TorchOptim:
    """``torch.optim``'s own optimizer over ``params``, constructed from the recipe as a PyTorch
    user constructs it; the same face as ``_KerasFormula`` (``next_alpha`` gives None: torch.optim
    keeps its own step count). ``flags``: ``foreach``/``fused``/``capturable`` as asked."""

    def __init__(self, recipe: Recipe, params: Sequence[torch.Tensor], **flags: Any) -> None:
        import torch

        lr, eps = float(recipe.learning_rate), float(recipe.epsilon)
        if recipe.optimizer == "adam":
            betas = (float(recipe.beta_1), float(recipe.beta_2))
            self.inner = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, **flags)
        elif recipe.optimizer == "rmsprop":
            rho = float(recipe.rho)
            self.inner = torch.optim.RMSprop(params, lr=lr, alpha=rho, eps=eps, **flags)
        else:
            self.inner = torch.optim.SGD(params, lr=lr, **flags)

    def next_alpha(self) -> None:
        return None

    def zero_grad(self) -> None:
        self.inner.zero_grad(set_to_none=True)

    def step(self, alpha: Any) -> None:
        self.inner.step()

    @property
    def state(self) -> list[list[torch.Tensor]]:
        """The moments per kind (e.g. Adam's exp_avg and exp_avg_sq), once the first step made
        them; torch.optim's step counters are left out."""
        import torch

        kinds: dict[str, list[torch.Tensor]] = {}
        for group in self.inner.param_groups:
            for p in group["params"]:
                for key, value in self.inner.state.get(p, {}).items():
                    if key != "step" and isinstance(value, torch.Tensor):
                        kinds.setdefault(key, []).append(value)
        return list(kinds.values())

    def reset(self) -> None:
        """Back to the state before the first step, in place (captured graphs keep pointing at
        it): every state tensor, step counters included, zeroed."""
        import torch

        for per_param in self.inner.state.values():
            for value in per_param.values():
                if isinstance(value, torch.Tensor):
                    value.zero_()


class _KerasFormula:
    """Keras 3's update of ``params`` from their ``.grad``, under ``no_grad``.

    ``next_alpha()`` is called once per step on the host and returns that step's scalar for
    ``step``: Adam's bias-corrected step size, the learning rate otherwise. ``step`` takes it as
    a Python float or a 0-d device tensor (compiled and captured steps, where it changes without
    recompiling). ``foreach``: torch's multi-tensor ops over the list, else one op per tensor.
    """

    def __init__(self, recipe: Recipe, params: Sequence[torch.Tensor], foreach: bool) -> None:
        import torch

        self.params = list(params)
        self.name = recipe.optimizer
        self.foreach = foreach
        self.lr = float(recipe.learning_rate)
        self.beta_1, self.beta_2 = float(recipe.beta_1), float(recipe.beta_2)
        self.rho, self.eps = float(recipe.rho), float(recipe.epsilon)
        self.iterations = 0
        n_moments = {"sgd": 0, "adam": 2, "rmsprop": 1}[self.name]
        self.state = [[torch.zeros_like(p) for p in params] for _ in range(n_moments)]

    def next_alpha(self) -> float:
        self.iterations += 1
        if self.name != "adam":
            return self.lr
        t = self.iterations
        return self.lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def reset(self) -> None:
        """Moments back to zero, in place (the host's step count is not touched by a step)."""
        for moment in self.state:
            for t in moment:
                t.zero_()

    def step(self, alpha: Any) -> None:
        import torch

        params, grads = self.params, [p.grad for p in self.params]
        with torch.no_grad():
            self._step(params, grads, alpha)

    def _step(self, params: list[torch.Tensor], grads: list[torch.Tensor], alpha: Any) -> None:
        if self.foreach:
            self._step_foreach(params, grads, alpha)
        else:
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                self._step_one(i, p, g, alpha)

    def _step_foreach(self, params: list[Any], grads: list[Any], alpha: Any) -> None:
        import torch

        if self.name == "sgd":  # θ ← θ − lr·g
            update = torch._foreach_mul(grads, alpha)
        elif self.name == "adam":
            m, v = self.state
            torch._foreach_lerp_(m, grads, 1.0 - self.beta_1)  # m ← m + (g − m)(1 − β1)
            torch._foreach_lerp_(v, torch._foreach_mul(grads, grads), 1.0 - self.beta_2)
            denom = torch._foreach_sqrt(v)
            torch._foreach_add_(denom, self.eps)  # √v + ε
            update = torch._foreach_mul(m, alpha)
            torch._foreach_div_(update, denom)  # (m·α)/(√v + ε)
        else:
            (v,) = self.state
            torch._foreach_mul_(v, self.rho)
            torch._foreach_addcmul_(v, grads, grads, 1.0 - self.rho)  # v ← ρv + (1 − ρ)g²
            denom = torch._foreach_add(v, self.eps)
            torch._foreach_sqrt_(denom)  # √(v + ε)
            update = torch._foreach_mul(grads, alpha)
            torch._foreach_div_(update, denom)  # lr·g/√(v + ε)
        torch._foreach_sub_(params, update)

    def _step_one(self, i: int, p: Any, g: Any, alpha: Any) -> None:
        if self.name == "sgd":
            p.sub_(g * alpha)
        elif self.name == "adam":
            m, v = self.state[0][i], self.state[1][i]
            m.lerp_(g, 1.0 - self.beta_1)
            v.lerp_(g * g, 1.0 - self.beta_2)
            p.sub_((m * alpha).div_(v.sqrt().add_(self.eps)))
        else:
            v = self.state[0][i]
            v.mul_(self.rho).addcmul_(g, g, value=1.0 - self.rho)
            p.sub_((g * alpha).div_(v.add(self.eps).sqrt_()))


class TorchMLP:
    """The Backend contract over ``nn.Sequential`` and an explicit PyTorch training loop."""

    device = "cpu"  # replaced per instance: "gpu" when it runs on CUDA
    #: An epoch is a loop of steps whose optimizer and dropout RNG state persist across calls.
    SUB_EPOCH_EVALUATION: ClassVar[bool] = True
    OPTIONS: ClassVar[dict[str, str]] = {
        "compile": f"torch.compile the train step (default {str(DEFAULT_COMPILE).lower()})",
        "threads": "torch.set_num_threads while training and evaluating (default: the "
        "harness's --threads, else torch's own, one per core)",
        "optimizer": f"torch (default {DEFAULT_OPTIMIZER!r}: torch.optim, as PyTorch users "
        "update) or keras-formula (Keras 3's formulas in torch ops, for exact agreement)",
        "fused": "optimizer update: auto (default: torch.optim's choice, foreach on CUDA, loop on "
        "the CPU), foreach (multi-tensor ops), loop, or fused (torch.optim's fused kernel)",
        "flush_denormals": "flush denormals to zero during training epochs "
        f"(default {str(DEFAULT_FLUSH_DENORMALS).lower()})",
        "cuda_graphs": "replay the train step as a captured CUDA graph (CUDA only; default false)",
        "device": "auto (CUDA when available), cpu or cuda (default auto)",
    }

    #: ``mlpbench fidelity``: the same recipe as a plain PyTorch script.
    PLAIN_SCRIPT: ClassVar[tuple[str, ...]] = ("backends.plain.torch_plain",)
    EXACT_FORMULAS: ClassVar[dict[str, str]] = EXACT_FORMULAS
    FORMULA_DEPARTURES: ClassVar[dict[str, str]] = FORMULA_DEPARTURES

    SPEED_OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "compile": ("false", "true"),
        "fused": ("auto", "foreach", "fused"),
        "flush_denormals": ("false", "true"),
    }

    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        given = dict(self.options.backend)
        unknown = sorted(set(given) - set(self.OPTIONS))
        if unknown:
            raise OptionError(
                f"unknown torch option {unknown[0]!r}; known: {', '.join(self.OPTIONS)}"
            )
        self.compile = parse_bool("compile", given.get("compile", str(DEFAULT_COMPILE)))
        self.threads = (
            parse_positive_int("threads", given["threads"])
            if "threads" in given
            else self.options.threads  # the harness's budget (--threads), if any
        )
        self.optimizer_kind = parse_choice(
            "optimizer", given.get("optimizer", DEFAULT_OPTIMIZER), ("torch", "keras-formula")
        )
        self.fused = parse_choice(
            "fused", given.get("fused", DEFAULT_FUSED), ("auto", "foreach", "loop", "fused")
        )
        if self.fused == "fused" and self.optimizer_kind != "torch":
            raise OptionError("option fused=fused needs optimizer=torch (torch.optim's kernel)")
        self.flush_denormals = parse_bool(
            "flush_denormals", given.get("flush_denormals", str(DEFAULT_FLUSH_DENORMALS))
        )
        self.cuda_graphs = parse_bool("cuda_graphs", given.get("cuda_graphs", "false"))
        wanted = parse_choice("device", given.get("device", "auto"), ("auto", "cpu", "cuda"))

        import torch

        cuda = torch.cuda.is_available()
        if wanted == "cuda" and not cuda:
            raise OptionError("option device=cuda, but torch sees no CUDA device")
        self.torch_device = torch.device("cuda" if wanted != "cpu" and cuda else "cpu")
        self.device = "gpu" if self.torch_device.type == "cuda" else "cpu"
        if self.fused == "auto":  # torch.optim's foreach=None: foreach for CUDA tensors only
            self.fused = DEFAULT_FUSED_RESOLVED[self.device]
        if self.cuda_graphs and self.device != "gpu":
            raise OptionError("cuda_graphs needs a CUDA device")
        if self.cuda_graphs and self.compile:
            raise OptionError("compile and cuda_graphs cannot be combined; choose one")
        torch.backends.cuda.matmul.allow_tf32 = bool(self.options.tf32)
        torch.backends.cudnn.allow_tf32 = bool(self.options.tf32)
        self.flushed: bool | None = None  # whether set_flush_denormal took effect

    @staticmethod
    def unavailable_reason() -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed (pip install 'mlpbench[torch]')"
        return None

    @staticmethod
    def machine_facts() -> dict[str, Any]:
        """The CUDA devices torch sees (name, compute capability, memory) and the current one's
        GEMM peak measured with torch ({} without torch or without CUDA)."""
        if importlib.util.find_spec("torch") is None:
            return {}
        import torch

        if not torch.cuda.is_available():
            return {}
        gpus = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(
                {
                    "index": i,
                    "name": props.name,
                    "compute_capability": f"{props.major}.{props.minor}",
                    "memory_bytes": int(props.total_memory),
                    "torch_cuda": torch.version.cuda,
                }
            )
        gpus[torch.cuda.current_device()]["gemm_peak_gflops"] = _gemm_peaks(torch)
        return {"gpus": gpus}

    # --- build ------------------------------------------------------------------------------

    def build(self, recipe: Recipe, data: TrainData, init_weights: Weights) -> None:
        """Model, loss and optimizer state in the recipe's dtype on the device, weights loaded
        (transposed into ``nn.Linear``'s layout), data moved to the device. Nothing is compiled,
        captured or trained here: that lands in the first epoch."""
        import torch
        from torch import nn

        if recipe.dtype not in _DTYPES:
            raise RecipeUnsupported(f"dtype {recipe.dtype!r} is not supported by the torch backend")
        if recipe.optimizer not in ("sgd", "adam", "rmsprop"):
            raise RecipeUnsupported(f"optimizer {recipe.optimizer!r} is not implemented in torch")
        if self.compile:
            _check_compiler(self.torch_device.type)
        if self.options.threads:  # the inter-op pool too, while it can still be sized
            with contextlib.suppress(RuntimeError):
                torch.set_num_interop_threads(self.options.threads)
        self.recipe = recipe
        dtype, dev = getattr(torch, recipe.dtype), self.torch_device
        self._rng = self._seeded_rng(recipe.seed) if recipe.dropout else None

        layers: list[nn.Module] = []
        width_in = data.n_features
        for width in recipe.hidden:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            if recipe.dropout:
                layers.append(nn.Dropout(recipe.dropout))
            width_in = width
        layers.append(nn.Linear(width_in, recipe.n_classes))
        self.model = nn.Sequential(*layers).to(device=dev, dtype=dtype)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        self.params = [p for lin in self.linears for p in (lin.weight, lin.bias)]
        self.set_weights(init_weights)
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = self._make_optimizer(recipe)

        def put(a: np.ndarray, dt: Any) -> torch.Tensor:  # a copy: never the caller's memory
            return torch.tensor(np.ascontiguousarray(a), dtype=dt, device=dev)

        self.x_train, self.y_train = put(data.x_train, dtype), put(data.y_train, torch.int64)
        self.x_test, self.y_test = put(data.x_test, dtype), put(data.y_test, torch.int64)
        self.batch_size = int(recipe.batch_size or data.n_train)
        # Epoch accumulators: float64 loss·rows sum, int64 count of correct predictions. Shape
        # (1,), not 0-d: torch 2.13's inductor silently drops ``add_`` of a float32 value into a
        # 0-d float64 tensor (seen on the CPU), which would zero the compiled epoch's loss.
        self.loss_sum = torch.zeros(1, dtype=torch.float64, device=dev)
        self.correct = torch.zeros(1, dtype=torch.int64, device=dev)
        # The per-step scalar as a tensor, for compiled and captured steps.
        self.alpha = torch.zeros((), dtype=dtype, device=dev)
        self._step_fn = torch.compile(self._step) if self.compile else self._step
        self._graph: Any = None
        self._marks: StepMarks | None = None
        if self.device == "gpu":
            torch.cuda.reset_peak_memory_stats(dev)
            # a CUDA event before the first step and after each, read after the clock stops
            self._marks = _cuda_marks(torch)

    def _make_optimizer(self, recipe: Recipe) -> _TorchOptim | _KerasFormula:
        """The option's optimizer over ``self.params``, with the dispatch ``fused`` resolved to.
        ``fused=fused`` where torch.optim has no fused kernel for the recipe's optimizer (e.g.
        RMSprop) falls back to torch's own choice, and ``self.fused`` records that."""
        if self.optimizer_kind == "keras-formula":
            return _KerasFormula(recipe, self.params, foreach=self.fused == "foreach")
        if self.fused == "fused" and not _has_fused_kernel(recipe.optimizer):
            self.fused = f"{DEFAULT_FUSED_RESOLVED[self.device]} (no fused {recipe.optimizer})"
        flags: dict[str, Any] = {"fused": True} if self.fused == "fused" else {}
        if self.fused in ("foreach", "loop") and self.fused != DEFAULT_FUSED_RESOLVED[self.device]:
            flags["foreach"] = self.fused == "foreach"  # asked for, not torch's own choice
        if self.cuda_graphs:
            flags["capturable"] = True  # its step count on the device, as capture requires
        return _TorchOptim(recipe, self.params, **flags)

    # --- training ---------------------------------------------------------------------------

    def _step(self, idx: torch.Tensor, alpha: Any) -> None:
        """One batch: gather, forward (train mode), loss, backward, the update; adds the batch's
        pre-update loss·rows and correct count to the epoch accumulators."""
        import torch

        x = self.x_train.index_select(0, idx)
        y = self.y_train.index_select(0, idx)
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step(alpha)
        with torch.no_grad():
            self.loss_sum.add_(loss.detach(), alpha=y.shape[0])
            self.correct.add_((logits.argmax(dim=1) == y).sum())

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        """Consecutive batches of ``order`` (moved to the device once); metrics are the
        sample-weighted means of each batch's loss and accuracy before its update, as 0-d
        device tensors (no host synchronization inside the epoch)."""
        import torch

        # A copy: from_numpy of a read-only array would warn.
        idx = torch.from_numpy(np.array(order, dtype=np.int64)).to(self.torch_device)
        batches = idx.split(self.batch_size)
        self.model.train()
        self.loss_sum.zero_()
        self.correct.zero_()
        # Keras' formula takes its step size as a device tensor where it must not recompile
        tensor_alpha = self.optimizer_kind == "keras-formula" and (self.compile or self.cuda_graphs)
        events = self._marks.start_epoch(len(batches)) if self._marks is not None else None
        with self._cpu_tuning(train=True), self._own_rng():
            if self.cuda_graphs and self._graph is None and len(batches[0]) == self.batch_size:
                self._capture()
            if self._marks is not None:
                self._marks.mark()
            for batch in batches:
                alpha = self.optimizer.next_alpha()
                if self._graph is not None and len(batch) == self.batch_size:
                    self._static_idx.copy_(batch)
                    if alpha is not None:
                        self.alpha.fill_(alpha)
                    self._graph.replay()
                elif tensor_alpha:
                    self.alpha.fill_(alpha)
                    self._step_fn(batch, self.alpha)
                else:
                    self._step_fn(batch, alpha)
                if self._marks is not None:
                    self._marks.mark()
        n = len(order)
        loss, accuracy = self.loss_sum[0] / n, self.correct[0].double() / n
        if events is None:
            return EpochMetrics(loss=loss, accuracy=accuracy)
        return EpochMetrics(loss, accuracy, events.epoch_seconds, events.step_seconds)

    def _capture(self) -> None:
        """Capture one full-batch ``_step`` into a CUDA graph (static index and α buffers).

        CUDA requires warm-up iterations on a side stream before capture; they train, so the
        weights, accumulators and RNG state are saved before and restored after them, and the
        optimizer's state is reset (zeroed in place: as before its first step). Capture itself
        records kernels without running them."""
        import torch

        self._static_idx = torch.zeros(self.batch_size, dtype=torch.int64, device=self.torch_device)
        saved = [t.clone() for t in self._state_tensors()]
        rng = torch.cuda.get_rng_state(self.torch_device)
        side = torch.cuda.Stream(self.torch_device)
        side.wait_stream(torch.cuda.current_stream(self.torch_device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step(self._static_idx, self.alpha)
        torch.cuda.current_stream(self.torch_device).wait_stream(side)
        with torch.no_grad():
            for t, s in zip(self._state_tensors(), saved, strict=True):
                t.copy_(s)
            self.optimizer.reset()
        torch.cuda.set_rng_state(rng, self.torch_device)
        self.optimizer.zero_grad()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step(self._static_idx, self.alpha)
        self._graph = graph

    def _seeded_rng(self, seed: int) -> Any:
        """This instance's dropout RNG: torch's default generator(s) as ``torch.manual_seed(seed)``
        leaves them. With CUDA graphs the generator is simply seeded (captured graphs keep their
        own view of it, so it is not swapped); otherwise the global state is left untouched."""
        import torch

        if self.cuda_graphs:
            torch.manual_seed(seed)
            return None
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(seed)
            return self._rng_state()

    def _rng_devices(self) -> list[Any]:
        return [self.torch_device] if self.device == "gpu" else []

    def _rng_state(self) -> tuple[Any, Any]:
        import torch

        cuda = torch.cuda.get_rng_state(self.torch_device) if self.device == "gpu" else None
        return torch.get_rng_state(), cuda

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Inside the block torch's default generators hold this instance's dropout RNG stream;
        the global state is restored after it (two instances never draw from one stream)."""
        if self._rng is None:
            yield
            return
        import torch

        with torch.random.fork_rng(devices=self._rng_devices()):
            cpu, cuda = self._rng
            torch.set_rng_state(cpu)
            if cuda is not None:
                torch.cuda.set_rng_state(cuda, self.torch_device)
            try:
                yield
            finally:
                self._rng = self._rng_state()

    def _state_tensors(self) -> list[torch.Tensor]:
        return [*(p.data for p in self.params), self.loss_sum, self.correct]

    @contextlib.contextmanager
    def _cpu_tuning(self, train: bool) -> Iterator[None]:
        """The thread count (if set) and, in training, flushed denormals; both restored after."""
        import torch

        saved_threads = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        flush = train and self.flush_denormals and self.device == "cpu"
        if flush:
            self.flushed = torch.set_flush_denormal(True)
        try:
            yield
        finally:
            if flush:
                torch.set_flush_denormal(False)
            if self.threads is not None:
                torch.set_num_threads(saved_threads)

    # --- the rest of the contract -----------------------------------------------------------

    def evaluate(self) -> Evaluation:
        import torch

        self.model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.torch_device)
        correct = torch.zeros((), dtype=torch.int64, device=self.torch_device)
        with self._cpu_tuning(train=False), torch.no_grad():
            for x, y in zip(
                self.x_test.split(EVAL_BATCH_SIZE), self.y_test.split(EVAL_BATCH_SIZE), strict=True
            ):
                logits = self.model(x)
                loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum")
                correct += (logits.argmax(dim=1) == y).sum()
        n = self.x_test.shape[0]
        return Evaluation(loss=float(loss_sum) / n, accuracy=float(correct) / n)

    def get_weights(self) -> Weights:
        out: Weights = []
        for lin in self.linears:
            out.append(np.ascontiguousarray(lin.weight.detach().T.cpu().numpy()))
            out.append(lin.bias.detach().cpu().numpy().copy())
        return [np.asarray(w, dtype=self.recipe.dtype) for w in out]

    def set_weights(self, weights: Weights) -> None:
        """Copy ``weights`` (Keras order and shapes) into the existing parameters, in place, so
        optimizer state, compiled code and captured graphs keep pointing at them."""
        import torch

        if len(weights) != len(self.params):
            raise ValueError(f"expected {len(self.params)} arrays, got {len(weights)}")
        with torch.no_grad():
            for i, lin in enumerate(self.linears):
                kernel = np.asarray(weights[2 * i], dtype=self.recipe.dtype)
                bias = np.asarray(weights[2 * i + 1], dtype=self.recipe.dtype)
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
                lin.bias.copy_(torch.from_numpy(bias))

    def synchronize(self) -> None:
        """Wait for queued CUDA work; nothing to wait for on the CPU (eager ops are synchronous)."""
        if self.device == "gpu":
            import torch

            torch.cuda.synchronize(self.torch_device)

    def formula_departure(self) -> dict[str, str]:
        """``{"optimizer_formula": how torch.optim's update departs from Keras'}``, or {} where
        the update is Keras' formula (settings carry the key only where it departs)."""
        departure = FORMULA_DEPARTURES.get(self.recipe.optimizer)
        if self.optimizer_kind == "torch" and departure:
            return {"optimizer_formula": departure}
        return {}

    def settings(self) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {
            "dtype": self.recipe.dtype,
            "device": self.device,
            "torch": torch.__version__,
            "compile": self.compile,
            "threads": self.threads if self.threads is not None else torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "optimizer": self.optimizer_kind,
            "fused": self.fused,
            "flush_denormals": bool(self.flushed)
            if self.flushed is not None
            else (self.flush_denormals and self.device == "cpu"),
            "cuda_graphs": self.cuda_graphs,
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **self.formula_departure(),
        }
        if self.device == "gpu":
            out["gpu"] = torch.cuda.get_device_name(self.torch_device)
            out["gpu_peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(self.torch_device))
            out["gpu_memory_measure"] = "allocator peak"
            out["cudnn_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        return out


def _cuda_marks(torch: ModuleType) -> StepMarks:
    """Timing CUDA events through torch (``backends.device_time.StepMarks``)."""
    return StepMarks(
        lambda: torch.cuda.Event(enable_timing=True),
        lambda e: e.record(),
        lambda e: e.synchronize(),
        lambda a, b: a.elapsed_time(b),
    )


def _gemm_peaks(
    torch: ModuleType, size: int = GPU_PEAK_SIZE, repeats: int = GPU_PEAK_REPEATS
) -> dict[str, float]:
    """{"float32", "tf32", "float64": GFLOP/s} of torch.matmul on (size × size) squares on the
    current GPU, best of ``repeats`` timed by CUDA events; the TF32 flag is put back after."""
    base = torch.rand((size, size), dtype=torch.float64, device="cuda")
    matmul = torch.backends.cuda.matmul

    def square_matmul(dtype: str) -> Callable[[], None]:
        x = base.to(getattr(torch, dtype))
        result = torch.empty_like(x)
        return lambda: torch.matmul(x, x, out=result)

    def set_tf32(allowed: bool) -> None:
        matmul.allow_tf32 = allowed

    tf32 = (lambda: matmul.allow_tf32, set_tf32)
    return gpu_gemm_peaks(square_matmul, tf32, _cuda_marks(torch), size, repeats)


def _has_fused_kernel(optimizer: str) -> bool:
    """Whether torch.optim's class for ``optimizer`` takes ``fused=True``."""
    import inspect

    import torch

    cls = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}
    return "fused" in inspect.signature(cls[optimizer]).parameters


def _check_compiler(device_type: str) -> None:
    """``torch.compile``'s inductor needs a C++ compiler for CPU code and Triton for CUDA code."""
    if device_type == "cuda":
        if importlib.util.find_spec("triton") is None:
            raise RecipeUnsupported("compile=true needs triton for CUDA code; it is not installed")
    elif shutil.which(os.environ.get("CXX", "g++")) is None:
        raise RecipeUnsupported("compile=true needs a C++ compiler (g++ or $CXX) for CPU code")
