"""Job plots (matplotlib, Agg backend): best-so-far reward and the controller's choices.

Each function returns a `Figure`; `png` renders and closes it (the job logs the bytes).
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")                       # headless: drivers run on servers
import matplotlib.pyplot as plt             # noqa: E402
from matplotlib.figure import Figure        # noqa: E402

MAX_PANELS = 16


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import io
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def best_so_far_figure(rewards: Sequence[float | None], title: str = "") -> Figure:
    """Reward per completed trial (dots) and the best so far (step line)."""
    fig, ax = plt.subplots(figsize=(7, 4))
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
    ax.set_title(title or "best reward vs trials")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def choice_probabilities_figure(history: Sequence[tuple[int, dict[str, dict[str, float]]]],
                                title: str = "") -> Figure:
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
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows + 0.4), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        choices: list[str] = []
        for _, probs in history:
            choices += [c for c in probs.get(key, {}) if c not in choices]
        for c in choices:
            ys = [probs.get(key, {}).get(c, math.nan) for _, probs in history]
            ax.plot([step for step, _ in history], ys, label=c)
        ax.set_title(key, fontsize=9)
        ax.set_ylim(0, 1)
        if choices:
            ax.legend(fontsize=6, loc="upper left")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title or "controller choice probabilities vs trials")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.88, hspace=0.45, wspace=0.25)
    return fig                                # (explicit spacing: tight_layout costs ~0.3 s here)
