"""Shared machinery of the child tasks: config validation, device and seed handling, and the
epoch loop (timing, throughput, divergence) that all three tasks run.

A task subclasses :class:`Task`, declares a config dataclass (fields made with :func:`param`
so their allowed values live next to them) and implements :meth:`Task.build`, which returns
a :class:`Run`: the model, a ``loss_step`` that computes one training loss, and an
``evaluate`` that returns validation metrics. Everything else happens here, once.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import re
import time
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn

from tasks.schedule import LrSchedule, count_params, make_optimizer  # noqa: F401 (re-exported)

DIVERGENCE_CHECK_EVERY = 10  # steps between the host syncs that look for divergence
DIVERGENCE_FACTOR = 10.0  # diverged: loss window mean > this x max(1, loss of the first step)


def diverging(window_mean: float, first_loss: float) -> bool:
    """The divergence rule: a non-finite loss, or a mean training loss over the last
    DIVERGENCE_CHECK_EVERY steps above DIVERGENCE_FACTOR x max(1, the first step's loss).
    Every task's loss is a cross-entropy (about ln K at initialisation) that a healthy run
    only lowers, so a tenfold rise means the optimiser has blown up even if still finite."""
    if not (math.isfinite(window_mean) and math.isfinite(first_loss)):
        return True
    return window_mean > DIVERGENCE_FACTOR * max(1.0, first_loss)


def param(default: Any, *, choices: tuple | None = None, low: float | None = None,
          high: float | None = None) -> Any:
    """A config dataclass field with its allowed values: ``choices``, or low <= x <= high."""
    return field(default=default, metadata={"choices": choices, "low": low, "high": high})


def derived(default: Any) -> Any:
    """A config dataclass field filled by the task itself (e.g. from layer-wise keys), not a key."""
    return field(default=default, metadata={"derived": True})


def config_keys(cls: type) -> list[str]:
    """The user-facing keys of a config dataclass, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if not f.metadata.get("derived")]


@dataclass
class TrainConfig:
    """Keys shared by every task; task configs extend it."""

    optimizer: str = param("adam", choices=("adam", "adamw", "sgd", "rmsprop"))  # sgd: momentum 0.9
    lr: float = param(3e-3, low=0.0)  # learning rate
    weight_decay: float = param(0.0, low=0.0)  # L2 (adam/sgd/rmsprop) or decoupled (adamw)
    grad_clip: float = param(1.0, low=0.0)  # max global grad norm; 0 disables clipping
    batch_size: int = param(64, low=1)  # sequences per optimisation step
    steps_per_epoch: int = param(100, low=1)  # optimisation steps between two evaluations
    lr_schedule: str = param("constant", choices=("constant", "cosine"))  # see LrSchedule
    lr_horizon_s: float = param(0.0, low=0.0)  # cosine over seconds of training, not steps (0: steps)


def _check_value(task: str, key: str, value: Any, hint: Any, meta: Mapping) -> Any:
    """Type-check and range-check one config value; return it coerced (e.g. 64.0 -> 64)."""
    bad = f"{task} config: {key}={value!r}"
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    allowed = set(typing.get_args(hint)) if union else {hint}
    if value is None:
        if type(None) in allowed:
            return None
        raise ValueError(f"{bad} must not be None")
    if int in allowed or float in allowed:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{bad} is not a number")
        if int in allowed:
            if float(value) != int(value):
                raise ValueError(f"{bad} is not an integer")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{bad} is not finite")
    elif bool in allowed:
        if not isinstance(value, bool):
            raise ValueError(f"{bad} is not a bool")
    elif str in allowed and not isinstance(value, str):
        raise ValueError(f"{bad} is not a string")
    if meta.get("choices") is not None and value not in meta["choices"]:
        options = ", ".join(str(c) for c in meta["choices"])
        raise ValueError(f"{bad} is not one of {options}")
    if meta.get("low") is not None and value < meta["low"]:
        raise ValueError(f"{bad} is below the minimum {meta['low']}")
    if meta.get("high") is not None and value > meta["high"]:
        raise ValueError(f"{bad} is above the maximum {meta['high']}")
    return value


def parse_config(task: str, cls: type, config: Mapping[str, Any],
                 per_layer: tuple[str, ...] = ()) -> tuple[Any, dict[str, dict[int, Any]]]:
    """Validate a decoded config dict against dataclass ``cls``; missing keys take defaults.

    Keys ``name_k`` (k = 1, 2, ...) for ``name`` in ``per_layer`` are layer-wise values from a
    search space's repeat block; they are checked like ``name`` and returned separately as
    ``{name: {k: value}}``. Any other unknown key is a ValueError naming it.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"{task} config must be a mapping, got {type(config).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("derived")}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    layered: dict[str, dict[int, Any]] = {}
    for key, value in config.items():
        match = re.fullmatch(r"(\w+)_([1-9][0-9]*)", str(key))
        if key in fields:
            values[key] = _check_value(task, key, value, hints[key], fields[key].metadata)
        elif match and match.group(1) in per_layer:
            name = match.group(1)
            checked = _check_value(task, key, value, hints[name], fields[name].metadata)
            layered.setdefault(name, {})[int(match.group(2))] = checked
        else:
            raise ValueError(f"{task} config: unknown key {key!r}; valid keys: {', '.join(fields)}")
    return cls(**values), layered


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> CUDA when available else CPU; also 'cpu', 'cuda', 'cuda:N'."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: only 'auto', 'cpu' and 'cuda[:N]' are supported")
    return dev


@dataclass
class Run:
    """One training run, built by a task: the loop below drives it."""

    model: nn.Module
    loss_step: Callable[[], tuple[torch.Tensor, int]]  # -> (scalar loss with graph, work units)
    evaluate: Callable[[], dict[str, float]]  # validation metrics; must include the task metric


class Task(abc.ABC):
    """A child task: validated config in, one metrics dict per epoch out."""

    name: str  # registry name, e.g. "char_lm"
    metric: str  # the metric a search optimises, e.g. "val_loss"
    mode: str  # "min" or "max"
    config_cls: type  # the task's config dataclass (a TrainConfig subclass)
    throughput_key: str  # "tokens_per_s" or "seqs_per_s" (also reported as "throughput")
    val_metrics: tuple[str, ...] = ()  # what evaluate() returns (the metric among them): what a
    #                                    job may name as an objective or constraint, with params, step_ms
    per_layer: tuple[str, ...] = ()  # config keys that may also arrive as key_1..key_L
    full_validation: Mapping[str, Any] = {}  # config overrides that score on the whole val split

    @property
    def defaults(self) -> dict[str, Any]:
        """Every config key with its default value."""
        cfg = self.config_cls()
        return {key: getattr(cfg, key) for key in config_keys(self.config_cls)}

    def parse(self, config: Mapping[str, Any]) -> Any:
        """Validate ``config`` into the config dataclass, or raise ValueError naming the key."""
        cfg, layered = parse_config(self.name, self.config_cls, config, self.per_layer)
        self.check(cfg, layered)
        return cfg if not layered else dataclasses.replace(cfg, **self.layerwise(cfg, layered))

    def check(self, cfg: Any, layered: dict[str, dict[int, Any]]) -> None:
        """Cross-key checks beyond per-key ranges (override in tasks); raise ValueError."""

    def layerwise(self, cfg: Any, layered: dict[str, dict[int, Any]]) -> dict[str, Any]:
        """Fields to set from layer-wise keys (override in tasks that accept them)."""
        return {}

    @abc.abstractmethod
    def build(self, cfg: Any, device: torch.device, seed: int) -> Run:
        """Data, model and optimiser-free training step for one run (seeded)."""

    def train(self, config: Mapping[str, Any], epochs: int = 5, device: str = "auto",
              seed: int = 0) -> Iterator[dict[str, Any]]:
        """Validate ``config`` now, then return an iterator yielding one metrics dict per epoch.

        Each dict holds: epoch (1-based), the validation metrics (``self.metric`` among them),
        train_loss (mean over the epoch), steps and trained (cumulative optimisation steps and
        work units: tokens or sequences), seconds (cumulative wall time,
        evaluation included), throughput and ``self.throughput_key`` (work units per second of
        training steps in this epoch, evaluation excluded), num_params and diverged; and the
        run's cost: ``params`` (trainable parameters, as num_params) and ``step_ms`` (wall time
        of the training steps so far divided by their count, in milliseconds: each step draws
        its batch, runs forward, backward and the optimiser; building the data and model and
        evaluating are excluded).
        Divergence (see :func:`diverging`; checked every DIVERGENCE_CHECK_EVERY steps and at
        the end of the epoch), or a non-finite validation metric, ends training: the last dict
        has ``diverged=True`` and the metric set to inf (min mode) or 0.0 (max mode), and holds
        no other validation metrics. No exception is raised for divergence. The learning rate
        follows ``lr_schedule`` over this call's ``epochs`` (:class:`LrSchedule`): a trial a
        scheduler stops early stops part-way down its curve.
        """
        cfg = self.parse(config)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs={epochs!r} must be a positive integer")
        return self._epochs(cfg, epochs, resolve_device(device), int(seed))

    def _epochs(self, cfg: TrainConfig, epochs: int, device: torch.device,
                seed: int) -> Iterator[dict[str, Any]]:
        start = time.perf_counter()
        if device.type == "cuda":  # TF32 matmuls: free speed for these small models
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        # The global RNG seeds model init and dropout (runs sharing a process through threads
        # are therefore not bit-reproducible); data come from the run's own seeded generators.
        torch.manual_seed(seed)
        run = self.build(cfg, device, seed)
        run.model.to(device)
        optimizer = make_optimizer(cfg, run.model.parameters())
        schedule = LrSchedule(cfg, epochs * cfg.steps_per_epoch, start)
        num_params, steps, trained, first_loss = count_params(run.model), 0, 0, math.nan
        train_s = 0.0  # wall time of the training steps so far (evaluation excluded)
        for epoch in range(1, epochs + 1):
            epoch_start = time.perf_counter()
            run.model.train()
            train_loss, done, units, first_loss = self._train_epoch(run, optimizer, cfg, first_loss,
                                                                    schedule, steps)
            steps, trained = steps + done, trained + units
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch_s = max(time.perf_counter() - epoch_start, 1e-9)
            train_s += epoch_s
            rate = units / epoch_s
            diverged = done < cfg.steps_per_epoch or diverging(train_loss, first_loss)
            metrics = {} if diverged else self._evaluate(run)
            diverged = diverged or not math.isfinite(metrics.get(self.metric, math.nan))
            if diverged:
                metrics = {self.metric: math.inf if self.mode == "min" else 0.0}
            yield {"epoch": epoch, **metrics, "train_loss": train_loss, "steps": steps,
                   "seconds": time.perf_counter() - start, "throughput": rate,
                   self.throughput_key: rate, "trained": trained, "num_params": num_params,
                   "params": num_params, "step_ms": 1000.0 * train_s / steps, "diverged": diverged}
            if diverged:
                return

    @staticmethod
    def _train_epoch(run: Run, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                     first_loss: float, schedule: LrSchedule, before: int) -> tuple[float, int, int, float]:
        """Up to cfg.steps_per_epoch steps (the rate of each from ``schedule``, ``before`` steps
        into the run); stops at the first check that sees divergence.
        -> (mean loss, steps done, work units done, loss of the run's very first step)."""
        device = next(run.model.parameters()).device
        total = torch.zeros((), device=device)  # summed on the device: no per-step host sync
        window = torch.zeros((), device=device)
        units = 0
        for i in range(1, cfg.steps_per_epoch + 1):
            loss, n = run.loss_step()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
            if schedule.cosine:
                for group in optimizer.param_groups:
                    group["lr"] = schedule(before + i - 1)
            optimizer.step()
            window += loss.detach()
            units += n
            if math.isnan(first_loss):
                first_loss = loss.item()
            if i % DIVERGENCE_CHECK_EVERY == 0:
                total, window, mean = total + window, torch.zeros_like(window), window.item()
                if diverging(mean / DIVERGENCE_CHECK_EVERY, first_loss):
                    return total.item() / i, i, units, first_loss
        return (total + window).item() / cfg.steps_per_epoch, cfg.steps_per_epoch, units, first_loss

    def _evaluate(self, run: Run) -> dict[str, float]:
        run.model.eval()
        with torch.no_grad():
            return {k: float(v) for k, v in run.evaluate().items()}
