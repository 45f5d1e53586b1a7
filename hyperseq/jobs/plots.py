"""Job plots (matplotlib, Agg backend): best-so-far reward and the controller's choices.

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
    """Render a job's plots (best reward vs trials; the controller's choice probabilities, if
    any) and log them as PNG artifacts of its parent run. A plot that fails to render is
    skipped with a warning (the job's results do not depend on it); a store that refuses the
    write raises, as every writer call does."""
    from ..tracking.store import open_store
    figures: list[tuple[Any, str]] = [
        (lambda: best_so_far_figure(rewards, f"{name}: best reward vs trials"), "plots/best_reward.png")]
    if prob_history:
        figures.append((lambda: choice_probabilities_figure(prob_history, f"{name}: choice probabilities"),
                        "plots/choice_probabilities.png"))
    for make, path in figures:
        try:
            data = png(make())
        except Exception as err:                  # noqa: BLE001 - a plot is not worth the job
            log.warning("plot %s of job %s not rendered: %s", path, name, err)
            continue
        open_store(uri).log_image(run_id, data, path)


def png(fig: "Figure") -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import io
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        _pyplot().close(fig)
    return buf.getvalue()


def best_so_far_figure(rewards: Sequence[float | None], title: str = "") -> "Figure":
    """Reward per completed trial (dots) and the best so far (step line)."""
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    xs = [i + 1 for i, r in enumerate(rewards) if r is not None]
    ys = [r for r in rewards if r is not None]
    best, curve = -math.inf, []
    for r in rewards:
        if r is not None:
            best = max(best, r)
        curve.append(best if best > -math.inf else math.nan)
    ax.scatter(xs, ys, s=10, alpha=0.5, label="trial reward")
    ax.step(range(1, len(curve) + 1), curve, where="post", color="C3", label="best so far")
    ax.set_xlabel("trials completed")
    ax.set_ylabel("reward")
    ax.set_title(title or "best reward vs trials", y=1.0)
    ax.legend(loc="lower right")
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.13, top=0.91)
    return fig


def choice_probabilities_figure(history: Sequence[tuple[int, dict[str, dict[str, float]]]],
                                title: str = "") -> "Figure":
    """One panel per decision: each choice's probability vs trials completed.

    `history` holds (trials completed, `Controller.choice_probabilities()`) samples; a decision
    absent from a sample (inactive on the greedy path) leaves a gap.
    """
    keys: list[str] = []
    for _, probs in history:
        keys += [k for k in probs if k not in keys]
    keys = keys[:MAX_PANELS] or ["(none)"]
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
