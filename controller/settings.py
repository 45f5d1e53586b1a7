"""`ControllerOptions`: the controller's one option table, validated like Optuna's distributions.

Every sample-efficiency lever is a field that can be switched off (``0``, ``False`` or
``"ema"``), so an ablation toggles one at a time. (`hyperseq/jobs/options.py` holds the search
job's options; these are the policy's.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

SHAPINGS = ("rank", "quantile", "ema")
KERNELS = ("linear", "poly", "exp")
MULTI_SCREENS = ("parego", "pareto")
MAX_HIDDEN = 4096
# Every lever off: the update rule before the levers existed (restores version-1 checkpoints).
LEVERS_OFF = {"shaping": "ema", "replay_history": False, "ppo_epochs": 1, "dedup": False,
              "screen": 0, "dyna_samples": 0}


@dataclass
class ControllerOptions:
    # ---- policy -------------------------------------------------------------------------------
    hidden_size: int = 32          # LSTM width (and token-embedding size)
    num_layers: int = 1            # stacked LSTMCells
    temperature: float = 1.0       # sampling temperature
    tanh_c: float | None = 2.5     # logit clipping tanh_c * tanh(logits); None = off
    seed: int = 0                  # seeds the policy init and the sampling RNG
    # ---- policy-gradient update -----------------------------------------------------------------
    lr: float = 5e-3               # Adam learning rate
    grad_clip: float = 5.0         # max gradient norm; 0 = off
    entropy_weight: float = 0.1    # entropy bonus beta (per summed-sequence entropy)
    batch_size: int = 2            # new rewards per update (with replay_history: at least this many)
    baseline_decay: float = 0.9    # EMA decay of the reward baseline and std ("ema" shaping)
    normalize: bool = True         # "ema" shaping: divide advantages by the EMA reward std
    adv_clip: float = 5.0          # clip |advantage|
    # ---- levers (each off with 0 / False / "ema") ------------------------------------------------
    shaping: str = "rank"          # advantages: "rank" (centred ranks), "quantile" (top-q vs rest), "ema"
    quantile: float = 0.25         # "quantile" shaping: fraction of the history counted as good
    replay_history: bool = True    # update on every distinct config told so far, not just the new batch
    max_history: int = 256         # at most this many history rows per update (random subset)
    max_replay_ratio: int = 32     # replay: an update waits for history/this new results (0 = off)
    ppo_epochs: int = 2            # gradient steps per update (PPO when > 1; Schulman et al. 2017)
    ppo_clip: float = 0.2          # PPO ratio clip epsilon; 0 = unclipped
    elite_size: int = 8            # priority queue of the k best configs (PQT; 0 = off) ...
    elite_weight: float = 0.5      # ... pulled towards with elite_weight * -mean(log p(elite))
    dedup: bool = True             # never propose a config already asked, told or warm-started
    max_retries: int = 8           # policy redraw rounds per ask before falling back to uniform
    screen: int = 16               # policy candidates scored by the reward model per proposal; 0/1 = off
    screen_start: int = 5          # told results before screening starts
    space_filling: bool = True     # before screening starts, spread the first configs apart
    screen_random: int = 32        # uniform draws screened beside the policy's candidates ...
    screen_local: int = 32         # ... and one-decision moves from the best configs so far
    model_kernel: str = "exp"      # reward model kernel on slot overlap: "linear", "poly" (2nd degree), "exp"
    model_noise: float = 0.1       # reward model noise variance (targets are normal scores)
    dyna_samples: int = 0          # imagined configs per update, rewarded by the model (0 = off)
    multi_screen: str = "parego"   # several objectives: screen on "parego" (a random scalarisation
    #                                per proposal) or "pareto" (the constrained Pareto rank)

    @classmethod
    def create(cls, **options: Any) -> "ControllerOptions":
        """Validated options; unknown names are a ValueError listing the valid ones."""
        names = [f.name for f in fields(cls)]
        unknown = set(options) - set(names)
        if unknown:
            raise ValueError(f"unknown Controller option(s): {', '.join(sorted(unknown))} "
                             f"(valid: {', '.join(names)})")
        made = cls(**options)
        made.validate()
        return made

    def validate(self) -> None:
        """ValueError naming the first option with a wrong type or an out-of-range value."""
        ints = {"hidden_size": (1, MAX_HIDDEN), "num_layers": (1, 16), "batch_size": (1, 100_000),
                "seed": (0, 2 ** 63 - 1), "max_history": (1, 1_000_000),
                "max_replay_ratio": (0, 1_000_000), "ppo_epochs": (1, 100),
                "elite_size": (0, 100_000), "max_retries": (0, 10_000), "screen": (0, 100_000),
                "screen_start": (0, 1_000_000), "dyna_samples": (0, 100_000),
                "screen_random": (0, 100_000), "screen_local": (0, 100_000)}
        for name, (low, high) in ints.items():
            _int(name, getattr(self, name), low, high)
        positive = ("temperature", "lr", "adv_clip", "model_noise")
        for name in positive:
            _real(name, getattr(self, name), low=0.0, open_low=True)
        for name in ("entropy_weight", "grad_clip", "elite_weight", "ppo_clip"):
            _real(name, getattr(self, name), low=0.0)
        _real("baseline_decay", self.baseline_decay, low=0.0, high=1.0, open_high=True)
        _real("quantile", self.quantile, low=0.0, high=1.0, open_low=True)
        if self.temperature < 1e-3:
            raise ValueError(f"Controller option temperature={self.temperature!r} must be >= 1e-3")
        if self.tanh_c is not None:
            _real("tanh_c", self.tanh_c, low=0.0, open_low=True)
        for name in ("normalize", "replay_history", "dedup", "space_filling"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"Controller option {name}={getattr(self, name)!r} must be true or false")
        _one_of("shaping", self.shaping, SHAPINGS)
        _one_of("model_kernel", self.model_kernel, KERNELS)
        _one_of("multi_screen", self.multi_screen, MULTI_SCREENS)


def _int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"Controller option {name}={value!r} must be an integer")
    if not low <= value <= high:
        raise ValueError(f"Controller option {name}={value!r} must be in [{low}, {high}]")


def _real(name: str, value: Any, low: float, high: float = math.inf,
          open_low: bool = False, open_high: bool = False) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"Controller option {name}={value!r} must be a finite number")
    if value < low or (open_low and value == low):
        raise ValueError(f"Controller option {name}={value!r} must be {'>' if open_low else '>='} {low:g}")
    if value > high or (open_high and value == high):
        raise ValueError(f"Controller option {name}={value!r} must be {'<' if open_high else '<='} {high:g}")


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Controller option {name}={value!r} must be one of {', '.join(allowed)}")
