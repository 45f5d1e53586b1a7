"""A multi-objective job's Pareto plot (matplotlib, Agg): every search trial in the plane of
its first two objectives, the feasible front highlighted and joined as a step line, the
infeasible trials marked.

The points are `tracking.front.search_points`' (the trials and epochs ``best --pareto``
lists), drawn in the metrics' own values and directions. With three or more objectives the
first two are drawn and the title says so; the front's members are all highlighted, and the
step line joins those of them that no other member beats in the two drawn objectives. A trial
without a value of every objective has no point and is only counted under the axes.

`log_pareto_plot` renders it and logs it to the job's parent run as ``plots/pareto.png``; the
job submits it to its MLflow writer process at its end, after the trial runs are written.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

from controller.pareto import pareto_front

from .objectives import Constraint, Objective
from .plots import _pyplot, png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..tracking.front import TrialPoint

PATH = "plots/pareto.png"
log = logging.getLogger(__name__)


def log_pareto_plot(uri: str, run_id: str, name: str) -> None:
    """Render job `name`'s Pareto plot and log it to its parent run `run_id`, if the job has two
    objectives or more (nothing otherwise). A plot that fails to render is skipped with a
    warning (the job's results do not depend on it); a store that refuses the write raises, as
    every writer call does."""
    from ..tracking.front import recorded_objectives, search_points
    from ..tracking.store import open_store
    store = open_store(uri)
    try:
        parent = store.get_run(run_id)
        if len(recorded_objectives(parent)[0]) < 2:      # one objective: nothing read, nothing drawn
            return
        objectives, constraints, points = search_points(uri, parent)
        data = png(pareto_figure(points, objectives, constraints, name))
    except Exception as err:                  # noqa: BLE001 - a plot is not worth the job
        log.warning("plot %s of job %s not rendered: %s", PATH, name, err)
        return
    store.log_image(run_id, data, PATH)


def _axis_label(obj: Objective) -> str:
    return f"{obj.name} ({'lower' if obj.mode == 'min' else 'higher'} is better)"


def _step_line(members: Sequence["TrialPoint"], objectives: Sequence[Objective]) -> tuple[list[float], list[float]]:
    """The front's staircase in the drawn plane, in the metrics' own values: the members
    non-dominated in the first two objectives, joined as the boundary of what they dominate."""
    pts = [m.point[:2] for m in members if m.point is not None]
    stairs = sorted(tuple(pts[i]) for i in pareto_front(pts))
    xs: list[float] = []
    ys: list[float] = []
    for k, (x, y) in enumerate(stairs):                 # minimising: right, then down
        if k:
            xs.append(x)
            ys.append(stairs[k - 1][1])
        xs.append(x)
        ys.append(y)
    sx, sy = (1 if objectives[0].mode == "min" else -1), (1 if objectives[1].mode == "min" else -1)
    return [sx * x for x in xs], [sy * y for y in ys]


def pareto_figure(points: Sequence["TrialPoint"], objectives: Sequence[Objective],
                  constraints: Sequence[Constraint], name: str = "") -> "Figure":
    """Every trial with a point: feasible ones as dots, the front's as larger red dots joined
    by its step line, infeasible ones as grey crosses (legend: counts and the constraints); a
    constraint on a drawn metric is a dashed line at its bound."""
    if len(objectives) < 2:
        raise ValueError(f"a Pareto plot needs two objectives, got {len(objectives)}")
    x_of, y_of = objectives[0].name, objectives[1].name
    drawn = [p for p in points if p.point is not None]
    groups = {"feasible": [p for p in drawn if p.feasible and not p.on_front],
              "infeasible": [p for p in drawn if not p.feasible],
              "front": [p for p in drawn if p.on_front]}
    fig, ax = _pyplot().subplots(figsize=(7, 5))
    rule = f": {', '.join(map(str, constraints))} not met" if constraints else ""
    styles = {"feasible": dict(s=18, alpha=0.6, color="C0", label=f"feasible ({len(groups['feasible'])})"),
              "infeasible": dict(s=28, marker="x", color="0.55", label=f"infeasible ({len(groups['infeasible'])}){rule}"),
              "front": dict(s=40, color="C3", zorder=3, label=f"front ({len(groups['front'])})")}
    for key, group in groups.items():
        ax.scatter([p.values[x_of] for p in group], [p.values[y_of] for p in group], **styles[key])
    if groups["front"]:
        ax.plot(*_step_line(groups["front"], objectives), color="C3", linewidth=1.2, zorder=2)
    for c in constraints:                               # a bound on a drawn metric: where it lies
        if c.name in (x_of, y_of):
            (ax.axvline if c.name == x_of else ax.axhline)(c.bound, color="0.55", linestyle="--", linewidth=0.8)
    ax.set_xlabel(_axis_label(objectives[0]))
    ax.set_ylabel(_axis_label(objectives[1]))
    shown = "" if len(objectives) == 2 else \
        f" (first 2 of {len(objectives)} objectives; also {', '.join(map(str, objectives[2:]))})"
    ax.set_title(f"{name}: Pareto front{shown}" if name else f"Pareto front{shown}", y=1.0, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    if len(drawn) < len(points):
        fig.text(0.01, 0.01, f"{len(points) - len(drawn)} trial(s) without a value of every objective left out", fontsize=7)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    return fig


__all__ = ["PATH", "log_pareto_plot", "pareto_figure"]
