"""Job plots (matplotlib, Agg backend): the task metric's best so far, and the controller's choices.

The plots speak in the task's metric (``val_loss``, ``val_exact_match``, ...), in its own
direction, not in the reward the searchers see: a reader knows the metric, not the rule that
maps it into [0, 1]. A trial's metric value is recovered from its reward by inverting the job's
reward rule (`metric_values`), so the driver hands the writer the rewards it already holds.

Each figure function returns a `Figure`; `png` renders and closes it. `log_job_plots` renders a
job's plots and logs them to its parent run: the job runs it in its MLflow writer process
(`BackgroundWriter`), so matplotlib's import (submitted early, `ready`) and the rendering stay
off the driver, and the rendering overlaps the driver's ranking query at the end of a job.
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from workers.rewards import RewardRule

MAX_PANELS = 16
log = logging.getLogger(__name__)


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (headless: drivers run on servers), imported on
    first use (a slow import): a driver that only submits `log_job_plots` never imports it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def ready() -> None:
    """Import matplotlib now (a writer runs it at a job's start, while Ray starts the trials)."""
    _pyplot()


def log_job_plots(uri: str, run_id: str, name: str, rewards: Sequence[float | None],
                  prob_history: Sequence[tuple[int, dict[str, dict[str, float]]]]) -> None:
    """Render a job's plots (the task metric's best so far vs trials; the controller's choice
    probabilities, if any) and log them as PNG artifacts of its parent run. The metric and its
    mode are the parent run's tags (a run without them is plotted in reward). A plot that fails
    to render is skipped with a warning (the job's results do not depend on it); a store that
    refuses the write raises, as every writer call does."""
    from ..tracking.store import open_store
    from ..tracking.tags import TAG_METRIC, TAG_MODE
    from workers.rewards import reward_rule
    store = open_store(uri)
    tags = store.get_run(run_id).data.tags
    metric, mode = tags.get(TAG_METRIC), tags.get(TAG_MODE)
    if metric and mode in ("min", "max"):
        values, label = metric_values(rewards, reward_rule(metric, mode)), metric
    else:
        values, label, mode = list(rewards), "reward", "max"
    figures: list[tuple[Any, str]] = [
        (lambda: best_so_far_figure(values, f"{name}: best {label} vs trials", metric=label, mode=mode),
         "plots/best_metric.png")]
    if prob_history:
        figures.append((lambda: choice_probabilities_figure(prob_history, f"{name}: choice probabilities"),
                        "plots/choice_probabilities.png"))
    for make, path in figures:
        try:
            data = png(make())
        except Exception as err:                  # noqa: BLE001 - a plot is not worth the job
            log.warning("plot %s of job %s not rendered: %s", path, name, err)
            continue
        store.log_image(run_id, data, path)


def metric_values(rewards: Sequence[float | None], rule: "RewardRule") -> list[float | None]:
    """Each trial's task metric, from its reward (`RewardRule.metric_of`): None for a failed
    trial and for a diverged child's floor under a min rule."""
    return [rule.metric_of(r) for r in rewards]


def png(fig: "Figure") -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import io
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        _pyplot().close(fig)
    return buf.getvalue()


def best_so_far_figure(values: Sequence[float | None], title: str = "", metric: str = "reward",
                       mode: str = "max") -> "Figure":
    """The task metric per completed trial (dots) and the best so far (step line), where best
    is the lowest value for a `mode` "min" metric and the highest for "max"."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    better = min if mode == "min" else max
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    finite = [(i + 1, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    best: float | None = None
    curve = []
    for v in values:
        if v is not None and math.isfinite(v):
            best = v if best is None else better(best, v)
        curve.append(math.nan if best is None else best)
    ax.scatter([i for i, _ in finite], [v for _, v in finite], s=10, alpha=0.5, label=f"trial {metric}")
    ax.step(range(1, len(curve) + 1), curve, where="post", color="C3", label="best so far")
    ax.set_xlabel("trials completed")
    ax.set_ylabel(f"{metric} ({'lower' if mode == 'min' else 'higher'} is better)")
    ax.set_title(title or f"best {metric} vs trials", y=1.0)
    ax.legend(loc="upper right" if mode == "min" else "lower right")
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.13, top=0.91)
    return fig


def choice_probabilities_figure(history: Sequence[tuple[int, dict[str, dict[str, float]]]],
                                title: str = "") -> "Figure":
    """One panel per decision with a choice to make: each choice's probability vs trials completed.

    `history` holds (trials completed, `Controller.choice_probabilities()`) samples; a decision
    absent from a sample (inactive on the greedy path) leaves a gap. A decision with a single
    choice (a fixed value, such as a space's training budget) has no panel: its probability is
    always 1 and says nothing about the search.
    """
    keys: list[str] = []
    choices_of: dict[str, set[str]] = {}
    for _, probs in history:
        keys += [k for k in probs if k not in keys]
        for k, dist in probs.items():
            choices_of.setdefault(k, set()).update(dist)
    keys = [k for k in keys if len(choices_of.get(k, ())) > 1][:MAX_PANELS] or ["(no decision with a choice)"]
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = _pyplot().subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows + 0.4), squeeze=False,
                                   sharey=True)
    from matplotlib.ticker import MaxNLocator
    steps = [step for step, _ in history]
    for ax, key in zip(axes.flat, keys):
        choices: list[str] = []
        for _, probs in history:
            choices += [c for c in probs.get(key, {}) if c not in choices]
        for c in choices:
            ax.plot(steps, [probs.get(key, {}).get(c, math.nan) for _, probs in history], label=c)
        ax.set_title(key, fontsize=9, y=1.0)     # a fixed place: placing it by the ticks is slow
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))      # few ticks, few artists
        if choices:
            ax.legend(fontsize=6, loc="upper left")
    axes[0, 0].set_ylim(0, 1)
    axes[0, 0].set_yticks([0, 0.5, 1])           # shared by every panel
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title or "controller choice probabilities vs trials")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.88, hspace=0.45, wspace=0.25)
    return fig                                # (explicit spacing: tight_layout is slow over many panels)
