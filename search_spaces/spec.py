"""Parse and validate a search-space spec (YAML or dict) into a flat list of slots.

A *slot* is one position of the token sequence: a config key, its ordered choices, and the
conditions under which it is emitted. Conditional decisions (`when`) and repeat blocks
(`repeat: layers`) both compile to slot conditions, so the rest of the code sees one shape.
Every error is a `SpecError` whose message starts with the path of the offending field.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import SpecError, path_part, show  # noqa: F401 (SpecError and show are re-exported)

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")            # always fullmatch: `$` passes "a\n"
SPACE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
TOP_KEYS = {"name", "task", "metric", "mode", "decisions", "description"}
DECISION_KEYS = {"name", "choices", "range", "steps", "log", "when", "ordered"}
REPEAT_KEYS = {"repeat", "decisions"}
MODES = ("min", "max")
MAX_REPEAT = 64
# Size caps: a space is a list a person writes; beyond these it is a mistake or an attack, and
# the controller's tables (one embedding row per choice) would not fit anyway.
MAX_CHOICES = 10_000          # choices (or grid steps) of one decision
MAX_SLOTS = 1_000             # token positions, repeat blocks expanded
MAX_TOTAL_CHOICES = 100_000   # choices summed over every slot
Scalar = (str, int, float, bool)


@dataclass(frozen=True)
class Slot:
    """One token position: emitted iff every `requires` entry holds.

    `requires` is a tuple of (key, allowed choice indices of that key's slot). Repeat block
    `i` requires its count decision to take a value >= i; `when` adds equality conditions.
    """

    key: str                                  # config key, e.g. "lr" or "hidden_2"
    choices: tuple[Any, ...]                  # ordered values; the token is an index into this
    requires: tuple[tuple[str, frozenset[int]], ...] = ()
    path: str = ""                            # spec path, for error messages
    numeric_grid: bool = False                # came from `range` (ordered numeric values)
    log: bool = False                         # grid spaced in log
    ordered: bool = False                     # choices are an ordered scale (neighbours alike)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _require_type(path: str, value: Any, types: tuple[type, ...], what: str) -> None:
    # bool is an int subclass: never accept it where a number is meant.
    bad_bool = isinstance(value, bool) and bool not in types
    if bad_bool or not isinstance(value, types):
        raise SpecError(path, f"expected {what}, got {show(value)} ({_type_name(value)})")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def grid_values(path: str, low: Any, high: Any, steps: Any, log: Any) -> tuple[Any, ...]:
    """The explicit values of a `range` decision (validated)."""
    for sub, v in (("range[0]", low), ("range[1]", high)):
        if not _is_number(v) or not math.isfinite(v):
            raise SpecError(f"{path}.{sub}", f"expected a finite number, got {show(v)}")
    _require_type(f"{path}.steps", steps, (int,), "an integer")
    _require_type(f"{path}.log", log, (bool,), "true or false")
    if steps < 2:
        raise SpecError(f"{path}.steps", f"must be >= 2, got {steps}")
    if steps > MAX_CHOICES:
        raise SpecError(f"{path}.steps", f"must be <= {MAX_CHOICES} (the grid is a decision's choices), got {steps}")
    if low >= high:
        raise SpecError(f"{path}.range", f"low must be < high, got [{low}, {high}]")
    if log and low <= 0:
        raise SpecError(f"{path}.range", f"a log range needs low > 0, got [{low}, {high}]")
    fracs = [i / (steps - 1) for i in range(steps)]
    if log:
        values = [math.exp(math.log(low) + f * (math.log(high) - math.log(low))) for f in fracs]
    else:
        values = [low + f * (high - low) for f in fracs]
    values = [float(f"{v:.10g}") for v in values]           # 0.1 not 0.10000000000000002
    values[0], values[-1] = float(low), float(high)
    ints = isinstance(low, int) and isinstance(high, int) and not log
    if ints and all(v == int(v) for v in values):
        return tuple(int(v) for v in values)                # [64, 512] steps 8 -> ints
    if len(set(values)) != len(values):
        raise SpecError(f"{path}.steps", f"{steps} steps over [{low}, {high}] repeat values")
    return tuple(values)


def _identity(v: Any) -> tuple[str, Any]:
    """Hashable identity with `index_of`'s equality: bools apart from numbers, 3 == 3.0."""
    if isinstance(v, bool):
        return ("bool", v)
    return ("number", v) if _is_number(v) else (type(v).__name__, v)


def _choices(path: str, raw: Any) -> tuple[Any, ...]:
    if not isinstance(raw, list):
        raise SpecError(path, f"expected a list of values, got {show(raw)} ({_type_name(raw)})")
    if not raw:
        raise SpecError(path, "must not be empty")
    if len(raw) > MAX_CHOICES:
        raise SpecError(path, f"has {len(raw)} choices, at most {MAX_CHOICES}")
    seen: set[tuple[str, Any]] = set()                     # linear: one hash per choice
    for i, v in enumerate(raw):
        if not isinstance(v, Scalar):
            raise SpecError(f"{path}[{i}]", f"expected a string, number or bool, got {show(v)}")
        if isinstance(v, float) and not math.isfinite(v):
            raise SpecError(f"{path}[{i}]", f"expected a finite number, got {show(v)}")
        if _identity(v) in seen:
            raise SpecError(f"{path}[{i}]", f"duplicate choice {show(v)}")
        seen.add(_identity(v))
    return tuple(raw)


def index_of(choices: tuple[Any, ...], value: Any) -> int | None:
    """Index of `value` in `choices`; bools never match numbers, 3 matches 3.0."""
    for i, c in enumerate(choices):
        if isinstance(c, bool) or isinstance(value, bool):
            if isinstance(c, bool) and isinstance(value, bool) and c is value:
                return i
        elif _is_number(c) and _is_number(value):
            if c == value:
                return i
        elif type(c) is type(value) and c == value:
            return i
    return None


def _unknown_keys(path: str, d: dict, allowed: set[str]) -> None:
    for k in d:
        if k not in allowed:
            raise SpecError(f"{path}.{path_part(k)}", f"unknown key {show(k)} (allowed: {', '.join(sorted(allowed))})")


def _when(path: str, raw: Any, slots: dict[str, Slot], local: dict[str, str]) -> list[tuple[str, frozenset[int]]]:
    if not isinstance(raw, dict) or not raw:
        raise SpecError(path, f"expected a mapping {{decision: value}}, got {show(raw)}")
    out = []
    for name, want in raw.items():
        key = local.get(name, name) if isinstance(name, str) else name
        if not isinstance(key, str) or key not in slots:
            raise SpecError(f"{path}.{path_part(name)}", f"names no earlier decision (got {show(name)})")
        ref = slots[key]
        wanted = want if isinstance(want, list) else [want]
        idx = set()
        for v in wanted:
            i = index_of(ref.choices, v)
            if i is None:
                raise SpecError(f"{path}.{name}", f"{show(v)} is not a choice of {name!r} {show(list(ref.choices))}")
            idx.add(i)
        out.append((key, frozenset(idx)))
    return out


def _decision(path: str, raw: Any, slots: dict[str, Slot], key: str | None = None,
              local: dict[str, str] | None = None, inherited: tuple = ()) -> Slot:
    _unknown_keys(path, raw, DECISION_KEYS)
    if "name" not in raw:
        raise SpecError(path, "missing key 'name' (or 'repeat' for a repeat block)")
    name = raw["name"]
    _require_type(f"{path}.name", name, (str,), "a string")
    if not NAME_RE.fullmatch(name):
        raise SpecError(f"{path}.name", f"{show(name)} is not an identifier")
    key = key or name
    if key in slots:
        raise SpecError(f"{path}.name", f"duplicate decision name {key!r}")
    has_choices, has_range = "choices" in raw, "range" in raw
    if has_choices == has_range:
        raise SpecError(path, f"decision {name!r} needs exactly one of 'choices' or 'range'")
    if has_choices:
        for extra in ("steps", "log"):
            if extra in raw:
                raise SpecError(f"{path}.{extra}", f"only valid with 'range', got {show(raw[extra])}")
        choices, grid, log = _choices(f"{path}.choices", raw["choices"]), False, False
        ordered = raw.get("ordered", monotonic_numbers(choices))
        _require_type(f"{path}.ordered", ordered, (bool,), "true or false")
    else:
        rng = raw["range"]
        if not isinstance(rng, list) or len(rng) != 2:
            raise SpecError(f"{path}.range", f"expected [low, high], got {show(rng)}")
        if "steps" not in raw:
            raise SpecError(path, f"range decision {name!r} needs 'steps' (the grid size)")
        log = raw.get("log", False)
        if "ordered" in raw:
            raise SpecError(f"{path}.ordered", "only valid with 'choices' (a range is always ordered)")
        choices, grid, ordered = grid_values(path, rng[0], rng[1], raw["steps"], log), True, True
    requires = list(inherited)
    if "when" in raw:
        requires += _when(f"{path}.when", raw["when"], slots, local or {})
    return Slot(key, choices, tuple(requires), path, grid, bool(log), ordered)


def monotonic_numbers(choices: tuple[Any, ...]) -> bool:
    """Numeric choices listed in increasing or decreasing order read as a scale (a grid a
    person wrote out, e.g. widths [16, 32, 64]), so the controller treats neighbours as alike."""
    if len(choices) < 2 or not all(_is_number(c) for c in choices):
        return False
    steps = [b - a for a, b in zip(choices, choices[1:])]
    return all(d > 0 for d in steps) or all(d < 0 for d in steps)


def _repeat(path: str, raw: dict, slots: dict[str, Slot]) -> list[Slot]:
    _unknown_keys(path, raw, REPEAT_KEYS)
    count = raw["repeat"]
    _require_type(f"{path}.repeat", count, (str,), "the name of an earlier decision")
    if count not in slots:
        raise SpecError(f"{path}.repeat", f"names no earlier decision (got {show(count)})")
    ref = slots[count]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in ref.choices):
        raise SpecError(f"{path}.repeat", f"{count!r} must be an integer decision with choices >= 0, "
                        f"has {show(list(ref.choices))}")
    if max(ref.choices) > MAX_REPEAT:
        raise SpecError(f"{path}.repeat", f"{count!r} allows {max(ref.choices)} blocks, at most {MAX_REPEAT}")
    inner = raw.get("decisions")
    if not isinstance(inner, list) or not inner:
        raise SpecError(f"{path}.decisions", f"expected a non-empty list of decisions, got {show(inner)}")
    if max(ref.choices) * len(inner) > MAX_SLOTS:
        raise SpecError(path, f"repeats {len(inner)} decisions up to {max(ref.choices)} times, "
                        f"more than {MAX_SLOTS} decisions")
    out: list[Slot] = []
    for i in range(1, max(ref.choices) + 1):
        at_least_i = frozenset(j for j, c in enumerate(ref.choices) if c >= i)
        inherited = ref.requires + ((count, at_least_i),)
        local: dict[str, str] = {}
        for j, d in enumerate(inner):
            dpath = f"{path}.decisions[{j}]"
            if not isinstance(d, dict):
                raise SpecError(dpath, f"expected a mapping, got {show(d)}")
            if "repeat" in d:
                raise SpecError(f"{dpath}.repeat", "repeat blocks cannot be nested")
            name = d.get("name")
            key = f"{name}_{i}" if isinstance(name, str) else None
            slot = _decision(dpath, d, slots, key, local, inherited)
            slots[slot.key] = slot
            local[name] = slot.key
            out.append(slot)
    return out


def parse_spec(spec: Any) -> tuple[dict[str, Any], list[Slot]]:
    """Validate `spec`; return (header, slots). Header has name, task, metric, mode, description."""
    if not isinstance(spec, dict):
        raise SpecError("<spec>", f"expected a mapping at the top level, got {show(spec)}")
    _unknown_keys("<spec>", spec, TOP_KEYS)
    header: dict[str, Any] = {"name": spec.get("name", "space"), "task": spec.get("task"),
                              "metric": spec.get("metric"), "mode": spec.get("mode"),
                              "description": spec.get("description")}
    _require_type("name", header["name"], (str,), "a string")
    if not SPACE_NAME_RE.fullmatch(header["name"]) or ".." in header["name"]:
        raise SpecError("name", f"{show(header['name'])} may use letters, digits, '_', '-', '.' only "
                        "(1-128 of them, starting with a letter or digit, no '..')")
    for key in ("task", "metric", "description"):
        if header[key] is not None:
            _require_type(key, header[key], (str,), "a string")
    if header["mode"] is not None and header["mode"] not in MODES:
        raise SpecError("mode", f"must be 'min' or 'max', got {show(header['mode'])}")
    if header["mode"] is not None and header["metric"] is None:
        raise SpecError("mode", "given without 'metric'")
    if header["metric"] is not None and header["mode"] is None:
        raise SpecError("metric", f"{show(header['metric'])} given without 'mode' (min or max)")
    decisions = spec.get("decisions")
    if not isinstance(decisions, list) or not decisions:
        raise SpecError("decisions", f"expected a non-empty list, got {show(decisions)}")
    slots: dict[str, Slot] = {}
    ordered: list[Slot] = []
    for i, d in enumerate(decisions):
        path = f"decisions[{i}]"
        if not isinstance(d, dict):
            raise SpecError(path, f"expected a mapping, got {show(d)}")
        new = _repeat(path, d, slots) if "repeat" in d else [_decision(path, d, slots)]
        for s in new:
            slots[s.key] = s
        ordered += new
        _check_size(path, ordered)
    return header, ordered


def _check_size(path: str, slots: list[Slot]) -> None:
    """The caps on the whole space (after each decision, so a huge repeat stops early)."""
    if len(slots) > MAX_SLOTS:
        raise SpecError(path, f"the space has {len(slots)} decisions (repeats expanded), at most {MAX_SLOTS}")
    total = sum(len(s.choices) for s in slots)
    if total > MAX_TOTAL_CHOICES:
        raise SpecError(path, f"the space has {total} choices in all, at most {MAX_TOTAL_CHOICES}")
