"""`SearchSpace`: configurations <-> token sequences over a validated spec.

A token is the index of the chosen value within one slot's choices. Slots are visited in
spec order; a slot whose conditions fail (a skipped `when`, a repeat block beyond the count)
emits no token and no key, so sequences vary in length as in NAS-RL.
"""
from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .spec import Slot, SpecError, index_of, parse_spec, show

BUILTIN_DIR = Path(__file__).resolve().parent
MAX_SPEC_BYTES = 256 * 1024        # a spec file a person writes is a few kB
MAX_YAML_NODES = 200_000           # YAML nodes with every alias expanded ("billion laughs")


def read_spec_file(path: Path) -> Any:
    """The parsed YAML of a spec file; SpecError naming the file for anything wrong with it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise SpecError(str(path), f"cannot read spec file ({e.strerror or e})") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(str(path), f"spec file is larger than {MAX_SPEC_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(str(path), f"not UTF-8 text: byte {show(data[e.start:e.start + 1])} at offset "
                        f"{e.start}") from None
    import yaml  # lazily: the torch-only device path needs no YAML parser to use a space
    from ._yaml import load
    try:
        return load(text, MAX_YAML_NODES)
    except RecursionError:
        raise SpecError(str(path), "invalid YAML: nested too deeply") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(str(path), f"invalid YAML{at}: {str(problem)[:200]}") from None


class SearchSpace:
    """An ordered, conditional space of discrete decisions (see `spec.py` for the format)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        header, slots = parse_spec(spec)
        self.spec: dict[str, Any] = copy.deepcopy(dict(spec))
        self.name: str = header["name"]
        self.task: str | None = header["task"]
        self.metric: str | None = header["metric"]
        self.mode: str | None = header["mode"]
        self.description: str | None = header["description"]
        self.slots: tuple[Slot, ...] = tuple(slots)
        self._by_key = {s.key: s for s in self.slots}
        # no conditions: every slot is always active, so sampling needs no activity checks
        self._flat_sizes = None if any(s.requires for s in self.slots) else [len(s.choices) for s in self.slots]

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> "SearchSpace":
        return cls(spec)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SearchSpace":
        """A space from a YAML file (UTF-8, at most `MAX_SPEC_BYTES`, no duplicate keys, no
        Python tags, aliases expanding to at most `MAX_YAML_NODES` nodes)."""
        path = Path(path)
        return cls(read_spec_file(path))

    def to_yaml(self) -> str:
        import yaml
        return yaml.safe_dump(self.spec, sort_keys=False)

    # ---- slots ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.slots)

    def __repr__(self) -> str:
        return f"SearchSpace(name={self.name!r}, slots={len(self.slots)}, size={self.size()})"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.slots)

    def slot(self, key: str) -> Slot:
        """The slot of decision `key` (KeyError when the space has none)."""
        return self._by_key[key]

    @staticmethod
    def is_active(slot: Slot, chosen: Mapping[str, int]) -> bool:
        """Whether `slot` emits a token given the indices chosen so far (by key)."""
        return all(chosen.get(k) in allowed for k, allowed in slot.requires)

    # ---- config <-> tokens -------------------------------------------------------------------
    def encode(self, config: Mapping[str, Any]) -> list[int]:
        """Token sequence of a valid config. ValueError names the first bad key."""
        return [tok for _, tok in self._walk(config)]

    def encode_slots(self, config: Mapping[str, Any]) -> list[tuple[int, int]]:
        """(slot index, token) pairs of a config: what the controller re-scores."""
        return list(self._walk(config))

    def _walk(self, config: Mapping[str, Any], extra_ok: bool = False) -> Iterator[tuple[int, int]]:
        if not isinstance(config, Mapping):
            raise ValueError(f"config must be a mapping, got {config!r}")
        chosen: dict[str, int] = {}
        for i, slot in enumerate(self.slots):
            if not self.is_active(slot, chosen):
                continue
            if slot.key not in config:
                raise ValueError(f"config is missing key {slot.key!r} (choices: {list(slot.choices)})")
            tok = index_of(slot.choices, config[slot.key])
            if tok is None:
                raise ValueError(f"config {slot.key}={config[slot.key]!r} is not one of {list(slot.choices)}")
            chosen[slot.key] = tok
            yield i, tok
        for key in () if extra_ok else config:
            if key not in chosen:
                why = "is inactive for this config" if key in self._by_key else "is not a decision of this space"
                raise ValueError(f"config key {key!r} {why} (space {self.name!r})")

    def decode(self, tokens: Sequence[int]) -> dict[str, Any]:
        """Config of a token sequence; ValueError for a wrong length or out-of-range token."""
        config: dict[str, Any] = {}
        chosen: dict[str, int] = {}
        it = iter(enumerate(tokens))
        for slot in self.slots:
            if not self.is_active(slot, chosen):
                continue
            pos, tok = next(it, (None, None))
            if pos is None:
                raise ValueError(f"token sequence too short: {len(tokens)} tokens, no token for {slot.key!r}")
            if not isinstance(tok, int) or isinstance(tok, bool) or not 0 <= tok < len(slot.choices):
                raise ValueError(f"token {pos} for {slot.key!r} is {tok!r}, expected 0..{len(slot.choices) - 1}")
            chosen[slot.key] = tok
            config[slot.key] = slot.choices[tok]
        if next(it, None) is not None:
            raise ValueError(f"token sequence too long: {len(tokens)} tokens, config needs {len(chosen)}")
        return config

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A canonical copy of `config` (raises ValueError naming the bad key)."""
        return self.decode(self.encode(config))

    def project(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """Drop inactive keys from a config that has a value for every slot (Tune's random
        search samples every slot; this keeps only what the config actually uses)."""
        return self._values({self.slots[i].key: t for i, t in self._walk(flat, extra_ok=True)})

    def _values(self, chosen: Mapping[str, int]) -> dict[str, Any]:
        """Config of chosen token indices by key."""
        return {k: self._by_key[k].choices[t] for k, t in chosen.items()}

    # ---- sampling and counting -------------------------------------------------------------
    def sample(self, rng: random.Random) -> dict[str, Any]:
        """One config with every active slot drawn uniformly (the untrained policy's law)."""
        return self._values({self.slots[i].key: t for i, t in self.sample_tokens(rng)})

    def sample_tokens(self, rng: random.Random, fixed: Mapping[int, int] | None = None) -> tuple[tuple[int, int], ...]:
        """(slot index, token) pairs of one config: tokens of `fixed` (by slot index) where
        their slot is active, every other active slot drawn uniformly."""
        fixed = fixed or {}
        if self._flat_sizes is not None:       # the same draws, in the same order, as below
            return tuple((i, fixed[i] if i in fixed else rng.randrange(n)) for i, n in enumerate(self._flat_sizes))
        chosen: dict[str, int] = {}
        out = []
        for i, slot in enumerate(self.slots):
            if self.is_active(slot, chosen):
                tok = fixed[i] if i in fixed else rng.randrange(len(slot.choices))
                chosen[slot.key] = tok
                out.append((i, tok))
        return tuple(out)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every valid config, in lexicographic token order."""
        def rec(i: int, chosen: dict[str, int]) -> Iterator[dict[str, int]]:
            if i == len(self.slots):
                yield dict(chosen)
                return
            slot = self.slots[i]
            if not self.is_active(slot, chosen):
                yield from rec(i + 1, chosen)
                return
            for t in range(len(slot.choices)):
                chosen[slot.key] = t
                yield from rec(i + 1, chosen)
            del chosen[slot.key]
        for chosen in rec(0, {}):
            yield self._values(chosen)

    def size(self) -> int:
        """Number of valid configs. Branches only on slots some condition depends on."""
        referenced = {k for s in self.slots for k, _ in s.requires}
        def rec(i: int, chosen: dict[str, int]) -> int:
            if i == len(self.slots):
                return 1
            slot = self.slots[i]
            if not self.is_active(slot, chosen):
                return rec(i + 1, chosen)
            if slot.key not in referenced:
                return len(slot.choices) * rec(i + 1, chosen)
            total = 0
            for t in range(len(slot.choices)):
                chosen[slot.key] = t
                total += rec(i + 1, chosen)
            del chosen[slot.key]
            return total
        return rec(0, {})


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A built-in space by name (`char_lm`, ...) or a YAML file by path."""
    text = str(name_or_path)
    if text in builtin_names():
        return SearchSpace.from_yaml(BUILTIN_DIR / f"{text}.yaml")
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SpecError(text, "no such spec file")
        return SearchSpace.from_yaml(path)
    raise SpecError("SPACE", f"unknown space {text!r}: not a built-in ({', '.join(builtin_names())}) "
                    "nor a .yaml file")
