"""Rendering of a `gpu_search.py` result: the summary table, the plot and the BENCHMARKS.md section.

Reads only the result's JSON, so a result made on a machine without matplotlib is rendered
elsewhere with `python benchmarks/gpu_search.py --from search.json --write`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

REFERENCES = {"nanoGPT shakespeare-char (10.7M-param transformer)": 1.4697,
              "hand-tuned 2x512 LSTM": 1.41}
PHASE_KEYS = ("steps_per_epoch", "eval_chars")  # set by the phase, whatever the space says


def _scored_finals(result: dict, name: str) -> list[dict]:
    """A searcher's finals that count: finite, and not a finalist halved by the final's race
    (the searcher's answer is the finalist that trained on)."""
    return [f for f in result["finals"] if f["searcher"] == name and f["status"] != "halved"
            and f["val_loss"] is not None and math.isfinite(f["val_loss"])]


def summary(result: dict) -> list[dict[str, Any]]:
    rows = []
    for name in [*result["searchers"], "default"]:
        ts = [t for t in result["trials"] if t["searcher"] == name]
        fs = _scored_finals(result, name)
        best = min(fs, key=lambda f: f["val_loss"]) if fs else None
        explored = [t["val_loss"] for t in ts if t["status"] == "done" and math.isfinite(t["val_loss"])]
        rows.append({"searcher": name, "trials": sum(t["status"] != "cut" for t in ts),
                     "diverged": sum(t["status"] == "diverged" for t in ts),
                     "crashed": sum(t["status"] == "crashed" for t in ts),
                     "best_explore": min(explored) if explored else None,
                     "final": best["val_loss"] if best else None,
                     "final_epochs": len(best["curve"]) if best else None,
                     "config": best["config"] if best else None})
    return rows


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _finite(v: float | None) -> float | None:
    """A standing as stored: None (or a non-finite float) = no best."""
    return v if v is not None and math.isfinite(v) else None


def table(result: dict) -> list[str]:
    """One row per searcher and the default config: the final beside the default config's final
    of the same run (the baseline), then the fixed references."""
    rows = summary(result)
    base = next((r["final"] for r in rows if r["searcher"] == "default"), None)
    lines = ["| searcher | trials (diverged, crashed) | best explore val_loss | final val_loss "
             "(whole val split) | final minus default config's | final epochs | config |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        trials = "-" if r["searcher"] == "default" else f"{r['trials']} ({r['diverged']}, {r['crashed']})"
        shown = {k: v for k, v in (r["config"] or {}).items() if k not in PHASE_KEYS}
        config = json.dumps(shown) if shown else ("task defaults" if r["searcher"] == "default" else "n/a")
        delta = "n/a" if r["final"] is None or base is None else f"{r['final'] - base:+.4f}"
        lines.append(f"| {r['searcher']} | {trials} | {_fmt(r['best_explore'])} | {_fmt(r['final'])} | "
                     f"{delta} | {r['final_epochs'] or 'n/a'} | `{config}` |")
    lines += [f"| reference: {name} | | | {value:.4f} | | | |" for name, value in REFERENCES.items()]
    return lines


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in result["searchers"]:
        ts = sorted((t for t in result["trials"] if t["searcher"] == name and t["status"] == "done"
                     and math.isfinite(t["val_loss"])), key=lambda t: t["end"])
        best, xs, ys = math.inf, [], []
        for t in ts:
            best = min(best, t["val_loss"])
            xs.append(t["end"] / 60)
            ys.append(best)
        line, = ax.step(xs, ys, where="post", label=f"{name} (explore, best so far)")
        best_final = [f["val_loss"] for f in _scored_finals(result, name)]
        if best_final:
            ax.plot(result["wall_s"] / 60, min(best_final), "o", color=line.get_color())
    default = [f["val_loss"] for f in result["finals"] if f["searcher"] == "default"]
    if default and default[0] is not None and math.isfinite(default[0]):
        ax.plot(result["wall_s"] / 60, default[0], "k*", ms=10, label="default config (final)")
    for name, value in REFERENCES.items():
        ax.axhline(value, ls="--", lw=0.8, color="gray")
        ax.annotate(name, (0, value), fontsize=7, va="bottom")
    ax.set(xlabel="minutes (dots at the end: each searcher's best final, whole val split)",
           ylabel="val_loss (nats/char)", title=f"char_lm search on one device ({result['device']})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _explore_budget(a: dict) -> str:
    if a.get("schedule", "none") != "asha":
        return f"{a['explore_epochs']} x {a['explore_steps']} steps per child"
    if a.get("rung_seconds"):
        return (f"successive halving in wall time (rungs of 1, 3, ... up to {a['explore_epochs']} x "
                f"{a['rung_seconds']:g} s of training, checked every {a['explore_steps']} steps)")
    return f"successive halving (rungs of 1, 3, ... up to {a['explore_epochs']} x {a['explore_steps']} steps)"


def _race_lines(result: dict) -> list[str]:
    """The final's race, if it ran: each searcher's finalists' best so far when it was decided."""
    race = result.get("final_race")
    if not race or not race["groups"]:
        return []
    parts = [f"{name} kept {g['kept']} (" + ", ".join(f"{m} {_fmt(_finite(v))}"
                                                    for m, v in g["standings"].items()) + ")"
             for name, g in race["groups"].items()]
    return [f"Race decided {race['at']:.0f} s into the final: " + "; ".join(parts) + ".", ""]


def section(result: dict) -> str:
    """The BENCHMARKS.md section a result is written to: one per device kind (cpu, cuda)."""
    return "search-quality-" + result["device"].split(":")[0]


def markdown(result: dict) -> str:
    a = result["args"]
    kind = result["device"].split(":")[0]
    return "\n".join([
        f"## Search quality: a char_lm search in a fixed wall budget ({kind.upper()})", "",
        f"Command: `{result['command']}`", "",
        f"Machine: {result['machine']}, device {result['device']}. Date: {result.get('date', 'n/a')}.", "",
        f"Budget: {a['minutes']} wall minutes on the device ({result['wall_s'] / 60:.1f} used), "
        f"{a['slots']} packed children; explore {a['explore_fraction']:.0%} of it with "
        + _explore_budget(a)
        + f" (space `{a['space']}`"
        f"{', fixed ' + a['fixed'] if a.get('fixed') else ''}), then each "
        f"searcher's top {a['final_top']} and the default config for up to {a['final_epochs']} x "
        f"{a['final_steps']} steps, scored on the whole validation split (best epoch)"
        + (f"; each searcher's finalists race and at {a['final_race']:.0%} of the final's budget only "
           f"its best so far trains on" if a.get("final_race") and a["final_top"] > 1 else "") + ".", "",
        *table(result), "", *_race_lines(result),
        f"![best val_loss found vs time](benchmarks/results/{section(result)}.png)"])
