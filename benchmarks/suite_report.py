"""The benchmark suite's measures, markdown, plots and progress (`benchmarks/suite.py` runs it;
the measures are defined in its module docstring)."""
from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from benchmarks.report import header
from benchmarks.suite_problems import GROUPS, SEED_OFFSET, SPLITS, Problem, load_problem, split_of

SECTION = "suite"              # BENCHMARKS.md markers: <!-- suite:begin --> ... <!-- suite:end -->
# The aggregates reported: each split's public problems apart from this project's tables.
PARTS = {f"{split} split, {kind}": tuple(p for p in SPLITS[split]
                                         if p.startswith("table/") == (kind == "stored tables"))
         for split in ("tuning", "report") for kind in ("public problems", "stored tables")}
HEADING = "## Suite: every searcher on public tabular benchmarks and the stored tables"


def problem_stats(values: Sequence[float], sign: int) -> dict[str, float]:
    """Scores (sign * value, lower is better) of a problem's configs: best, median, worst
    finite, the top-1% threshold (as `benchmarks.tabular.Table.top_fraction`) and the scale
    that normalises regret (median - best)."""
    scores = sorted(sign * v for v in values if not math.isnan(v))
    finite = [s for s in scores if math.isfinite(s)]
    best, median = finite[0], statistics.median(scores)
    if not median > best:
        raise ValueError(f"cannot normalise: the median config is as good as the best ({best})")
    return {"best": best, "median": median, "worst": finite[-1], "scale": median - best,
            "top1": scores[max(0, math.ceil(0.01 * len(scores)) - 1)]}


def regret_curve(unit: dict[str, Any], stats: dict[str, float], sign: int) -> list[float]:
    """Regret after each trial 1..unit["requested"] of the config with the best observation so
    far (earliest on ties); a searcher that ran out of configs keeps its recommendation."""
    best_seen, regret, out = math.inf, stats["worst"] - stats["best"], []
    for observed, true in zip(unit["observed"], unit["true"]):
        score = sign * observed if observed is not None else math.nan
        if math.isfinite(score) and score < best_seen:
            best_seen, regret = score, sign * true - stats["best"]
        out.append(regret)
    return out + [regret] * (unit["requested"] - len(out))


def trials_to_top(unit: dict[str, Any], stats: dict[str, float], sign: int) -> float:
    """The first trial whose config's true value is in the top 1%; inf if none was."""
    hit = next((i + 1 for i, t in enumerate(unit["true"]) if t is not None and sign * t <= stats["top1"]), None)
    return math.inf if hit is None else hit


def _searcher_summary(units: list[dict[str, Any]], stats: dict[str, float], sign: int,
                      budgets: Sequence[int]) -> dict[str, Any]:
    curves = [regret_curve(u, stats, sign) for u in units]
    horizon = min(len(c) for c in curves)
    at = {b: [c[b - 1] for c in curves] for b in budgets if b <= horizon}
    hits = sorted(trials_to_top(u, stats, sign) for u in units)
    return {"median": {b: statistics.median(v) for b, v in at.items()},
            "mean": {b: statistics.fmean(v) for b, v in at.items()},
            "norm": {b: statistics.fmean(v) / stats["scale"] for b, v in at.items()},
            "norm_curve": [statistics.fmean(c[t] for c in curves) / stats["scale"] for t in range(horizon)],
            "reached": f"{sum(math.isfinite(h) for h in hits)}/{len(hits)}",
            "top1": hits[len(hits) // 2], "horizon": horizon,
            "ms": statistics.fmean(u["ms"] for u in units)}


def summarize(results: dict[tuple[str, str], list[dict[str, Any]]], budgets: Sequence[int],
              load: Callable[[str], Problem] = load_problem,
              splits: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Per problem (`problems[p][searcher]`), per split (`splits[split]`: mean normalised regret
    over its problems and the rnn <= baseline counts) and per group (mean normalised curves).
    `load` gives a problem by name; `splits` (name -> problems) defaults to `PARTS`."""
    problems: dict[str, dict[str, Any]] = {}
    for (p, s), units in results.items():
        problem = load(p)
        stats = problem_stats(list(problem.true_values.values()), problem.sign)
        problems.setdefault(p, {})[s] = _searcher_summary(units, stats, problem.sign, budgets)
    names = list(dict.fromkeys(s for _, s in results))
    out = {"budgets": list(budgets), "searchers": names, "problems": problems, "splits": {}, "groups": {}}
    splits = PARTS if splits is None else splits
    for split, declared in splits.items():
        members = [p for p in problems if p in declared]
        if members:
            out["splits"][split] = _over(problems, members, names, budgets)
    for group in GROUPS:
        members = [p for p in problems if p.startswith(group + "/")]
        if members:
            out["groups"][group] = {s: _mean_curve([problems[p][s]["norm_curve"] for p in members])
                                    for s in names}
            out["groups"][group]["_problems"] = members
    return out


def _mean_curve(curves: list[list[float]]) -> list[float]:
    n = min(len(c) for c in curves)
    return [statistics.fmean(c[t] for c in curves) for t in range(n)]


def _over(problems: dict, members: list[str], names: list[str], budgets: Sequence[int]) -> dict[str, Any]:
    """Mean normalised regret over `members`, and for each rnn row and baseline the count of
    members where the rnn row's mean regret is at most the baseline's."""
    norm = {s: {b: statistics.fmean(problems[p][s]["norm"][b] for p in members)
                for b in budgets if all(b in problems[p][s]["norm"] for p in members)} for s in names}
    wins = {}
    for r in (s for s in names if s.startswith("rnn")):
        for x in (s for s in names if not s.startswith("rnn")):
            wins[(r, x)] = {b: sum(problems[p][r]["mean"][b] <= problems[p][x]["mean"][b] for p in members)
                            for b in budgets if b in norm[r] and b in norm[x]}
    ms = {s: statistics.fmean(problems[p][s]["ms"] for p in members) for s in names}
    return {"problems": members, "norm": norm, "wins": wins, "ms": ms}


def _cell(v: float | None, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v + 0.0, fmt)


def _split_table(split: str, part: dict[str, Any], budgets: Sequence[int], seeds: int) -> list[str]:
    first = SEED_OFFSET[split_of(part["problems"][0])]
    lines = [f"**{split}** ({len(part['problems'])} problems: "
             f"{', '.join(part['problems'])}; seeds {first}-{first + seeds - 1}). "
             "Mean normalised regret over the problems; rnn <= X: problems where rnn's mean regret "
             "is at most X's; ms/trial: mean ask+tell time per trial in this run (its --jobs "
             "processes share the CPUs).", ""]
    return lines + split_rows(part["norm"], part["ms"], part["wins"], len(part["problems"]), budgets, "<=")


def split_rows(values: Mapping[str, Mapping[int, float]], ms: Mapping[str, float],
               wins: Mapping[tuple[str, str], Mapping[int, int]], n: int, budgets: Sequence[int],
               relation: str) -> list[str]:
    """A split's table: a row per searcher (its value at each budget, its ms per trial), then a
    row per (rnn, baseline) pair: how many of the `n` problems stand in `relation`."""
    lines = ["| searcher | " + " | ".join(f"@{b}" for b in budgets) + " | ms/trial |",
             "| --- |" + " ---: |" * (len(budgets) + 1)]
    for s, row in values.items():
        lines.append(f"| {s} | " + " | ".join(_cell(row.get(b)) for b in budgets) + f" | {ms[s]:.1f} |")
    for (r, x), row in wins.items():
        lines.append(f"| {r} {relation} {x} | " + " | ".join(f"{row[b]}/{n}" if b in row else "-" for b in budgets)
                     + " | |")
    return lines


def markdown(summary: dict[str, Any], command: str, seeds: int, seconds: float) -> str:
    """The suite section of BENCHMARKS.md (its heading, command, machine and date first)."""
    budgets = summary["budgets"]
    lines = [HEADING, "", header(command),
             f"{seeds} seeds per problem, {seconds:.0f} s (cached units are not replayed). Regret is "
             "measured on each config's mean over its stored runs, for the config with the best "
             "observed value so far; normalised regret = regret / (best config - median config); "
             "definitions in `benchmarks/suite.py`. Tuning effort: tpe, tpe-mv, gp and random run "
             "Optuna's defaults (nothing tuned); rnn and rnn-job run the controller's defaults, "
             "which are chosen on the tuning split only (`benchmarks/tune_controller.py`, and this "
             "runner with --split tuning); a [label] row ran the --rnn-options of the command above.", ""]
    for split, part in summary["splits"].items():
        lines += _split_table(split, part, budgets, seeds) + [""]
    for group, curves in summary["groups"].items():
        lines.append(f"![{GROUPS.get(group, group)}: mean normalised regret vs trials](docs/images/suite_{group}.png)")
    lines += ["", "<details><summary>Per problem: median regret (metric units) and trials to the top 1%"
              "</summary>", "",
              "| problem | searcher | " + " | ".join(f"@{b}" for b in budgets)
              + " | top 1% reached | median trials to top 1% |",
              "| --- | --- |" + " ---: |" * (len(budgets) + 2)]
    for p, rows in summary["problems"].items():
        for s, r in rows.items():
            top = f">{r['horizon']}" if math.isinf(r["top1"]) else str(r["top1"])
            lines.append(f"| {p} | {s} | " + " | ".join(_cell(r["median"].get(b), ".4g") for b in budgets)
                         + f" | {r['reached']} | {top} |")
    return "\n".join(lines + ["", "</details>"])


def plot(summary: dict[str, Any], outdir: Path) -> list[Path]:
    """One PNG per problem group: mean normalised regret vs trials (log x), a line per searcher."""
    paths = []
    for group, curves in summary["groups"].items():
        late = [v for s in summary["searchers"] for v in curves[s][4:]]     # from trial 5 on
        paths.append(draw(outdir / f"suite_{group}.png", {s: curves[s] for s in summary["searchers"]},
                          f"{GROUPS[group]}, {len(curves['_problems'])} problems", "mean normalised regret",
                          (0, 1.1 * max(late) if late else None)))
    return paths


def draw(path: Path, curves: Mapping[str, Sequence[float]], title: str, ylabel: str,
         ylim: tuple[float | None, float | None]) -> Path:
    """One PNG at `path`: a line per searcher of its value after each trial (log x)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, label=s, lw=1.6)
    ax.set_ylim(*ylim)
    ax.set(xscale="log", xlabel="trials", ylabel=ylabel, title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class Progress:
    """Progress on stderr: each (problem, searcher) as its last seed finishes, with an ETA."""

    def __init__(self, results: dict[tuple[str, str], list], todo: int, enabled: bool = True) -> None:
        self.left = {k: sum(u is None for u in v) for k, v in results.items()}
        self.pairs, self.todo, self.done = len(results), todo, 0
        self.finished = sum(n == 0 for n in self.left.values())
        self.t0, self.enabled = time.time(), enabled
        units = sum(len(v) for v in results.values())
        self._say(f"{units - todo} of {units} units cached; replaying {todo}")

    def unit_done(self, problem: str, searcher: str) -> None:
        self.done += 1
        self.left[(problem, searcher)] -= 1
        if self.left[(problem, searcher)]:
            return
        self.finished += 1
        elapsed = time.time() - self.t0
        eta = elapsed / self.done * (self.todo - self.done)
        self._say(f"[{self.finished}/{self.pairs}] {problem} x {searcher} done; "
                  f"{self.done}/{self.todo} units, {elapsed:.0f} s, ETA {eta:.0f} s")

    def _say(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)
