"""The multi-objective suite's summary, markdown and plots (`benchmarks/mo_suite.py` runs it;
the measures are defined in its module docstring and in `benchmarks/mo_problems.py`)."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from benchmarks.mo_problems import GROUPS, REFERENCE, SPLITS, Measure, measure_of, problem_info, seeds_of
from benchmarks.report import header
from benchmarks.suite_report import _cell, draw, split_rows

SECTION = "mo_suite"      # BENCHMARKS.md markers: <!-- mo_suite:begin --> ... <!-- mo_suite:end -->
HEADING = "## Multi-objective suite: hypervolume on public multi-metric tables"


def _searcher_summary(units: list[dict[str, Any]], measure: Measure, budgets: Sequence[int]) -> dict[str, Any]:
    curves = [measure.curve(u["true"], u["requested"]) for u in units]
    horizon = min(len(c) for c in curves)
    return {"median": {b: statistics.median(c[b - 1] for c in curves) for b in budgets if b <= horizon},
            "curve": [statistics.median(c[t] for c in curves) for t in range(horizon)],
            "ms": statistics.fmean(u["ms"] for u in units)}


def summarize(results: dict[tuple[str, str], list[dict[str, Any]]], budgets: Sequence[int],
              measure: Callable[[str], Measure] = measure_of,
              splits: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Per problem (`problems[p][searcher]`: median hypervolume fraction at each budget, the
    median curve, ms per trial), per split (mean of the medians over its problems and the
    rnn >= baseline counts) and per group (the mean of the median curves). `measure` gives a
    problem's measure by name; `splits` (name -> problems) defaults to tuning and report."""
    problems: dict[str, dict[str, Any]] = {}
    for (p, s), units in results.items():
        problems.setdefault(p, {})[s] = _searcher_summary(units, measure(p), budgets)
    names = list(dict.fromkeys(s for _, s in results))
    out = {"budgets": list(budgets), "searchers": names, "problems": problems, "splits": {}, "groups": {}}
    splits = {k: SPLITS[k] for k in ("tuning", "report")} if splits is None else splits
    for split, declared in splits.items():
        members = [p for p in problems if p in declared]
        if members:
            out["splits"][split] = _over(problems, members, names, budgets)
    for p in problems:
        out["groups"].setdefault(p.split("/")[0], []).append(p)
    return out


def _over(problems: dict, members: list[str], names: list[str], budgets: Sequence[int]) -> dict[str, Any]:
    """Mean over `members` of the median fractions, and for each rnn row and baseline the count
    of members where rnn's median is at least the baseline's."""
    mean = {s: {b: statistics.fmean(problems[p][s]["median"][b] for p in members)
                for b in budgets if all(b in problems[p][s]["median"] for p in members)} for s in names}
    wins = {}
    for r in (s for s in names if s.startswith("rnn")):
        for x in (s for s in names if not s.startswith("rnn")):
            wins[(r, x)] = {b: sum(problems[p][r]["median"][b] >= problems[p][x]["median"][b] for p in members)
                            for b in budgets if b in mean[r] and b in mean[x]}
    ms = {s: statistics.fmean(problems[p][s]["ms"] for p in members) for s in names}
    return {"problems": members, "mean": mean, "wins": wins, "ms": ms}


def _split_table(split: str, part: dict[str, Any], budgets: Sequence[int], seeds: int) -> list[str]:
    first = seeds_of(part["problems"][0], seeds)
    lines = [f"**{split}** ({len(part['problems'])} problems: {', '.join(part['problems'])}; "
             f"seeds {first[0]}-{first[-1]}). Mean over the problems of the median hypervolume "
             "fraction; rnn >= X: problems where rnn's median is at least X's; ms/trial: mean "
             "ask+tell time per trial in this run (its --jobs processes share the CPUs).", ""]
    return lines + split_rows(part["mean"], part["ms"], part["wins"], len(part["problems"]), budgets, ">=")


def markdown(summary: dict[str, Any], command: str, seeds: int, seconds: float,
             info: Callable[[str], dict[str, Any]] = problem_info) -> str:
    """The mo_suite section of BENCHMARKS.md (its heading, command, machine and date first);
    `info` describes a problem by name (objectives, configs, front size)."""
    budgets = summary["budgets"]
    lines = [HEADING, "", header(command),
             f"{seeds} seeds per problem, {seconds:.0f} s (cached units are not replayed). The "
             "hypervolume fraction after b trials: the hypervolume of the evaluated configs' mean "
             "values (over their stored runs; the searcher is told one stored run) divided by that "
             "of the whole table's Pareto front, so 1.0 = the full front. Each objective is "
             "minimised and normalised to [0, 1] over the table's configs (accuracy negated; "
             "times, sizes and losses on a log scale), with the reference point "
             f"{REFERENCE} in every normalised objective. Definitions in `benchmarks/mo_suite.py` "
             "and `benchmarks/mo_problems.py`. Tuning effort: nsga2, tpe and random run Optuna's "
             "defaults (nothing tuned); rnn runs the controller's defaults, chosen on the tuning "
             "split only; a [label] row ran the --rnn-options of the command above.", ""]
    for split, part in summary["splits"].items():
        lines += _split_table(split, part, budgets, seeds) + [""]
    for group in summary["groups"]:
        lines.append(f"![{GROUPS.get(group, group)}: median hypervolume fraction vs trials]"
                     f"(docs/images/mo_suite_{group}.png)")
    lines += ["", "<details><summary>Per problem: objectives, table size and front size; median "
              "hypervolume fraction over seeds</summary>", "",
              "| problem | objectives | configs | front | searcher | "
              + " | ".join(f"@{b}" for b in budgets) + " |",
              "| --- | --- | ---: | ---: | --- |" + " ---: |" * len(budgets)]
    for p, rows in summary["problems"].items():
        about = info(p)
        for k, (s, r) in enumerate(rows.items()):
            facts = f"{', '.join(about['objectives'])} | {about['configs']} | {about['front']}" if k == 0 else " | |"
            lines.append(f"| {p if k == 0 else ''} | {facts} | {s} | "
                         + " | ".join(_cell(r["median"].get(b)) for b in budgets) + " |")
    return "\n".join(lines + ["", "</details>"])


def plot(summary: dict[str, Any], outdir: Path) -> list[Path]:
    """One PNG per problem group: the mean over its problems of the median hypervolume fraction
    vs trials (log x), a line per searcher."""
    paths = []
    for group, members in summary["groups"].items():
        curves = {}
        for s in summary["searchers"]:
            each = [summary["problems"][p][s]["curve"] for p in members]
            curves[s] = [statistics.fmean(c[t] for c in each) for t in range(min(map(len, each)))]
        paths.append(draw(outdir / f"mo_suite_{group}.png", curves, GROUPS.get(group, group),
                          "median hypervolume fraction (mean over problems)", (None, 1.0)))
    return paths
