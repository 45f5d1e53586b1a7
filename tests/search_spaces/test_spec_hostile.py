"""Hostile spec files: each is refused quickly, with one bounded message naming the file or field.

Found by an adversarial pass (before the fix): ten levels of YAML aliases ran 364 s and died
with a MemoryError, seven levels gave a 39 MB error line; `steps: 1000000000` ran out of memory;
16k choices took 121 s (a quadratic duplicate check); duplicate keys were silently merged (the
last won); a non-UTF-8 file's error did not name it; names with a trailing newline passed.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from search_spaces import SearchSpace, SpecError
from search_spaces.spec import MAX_CHOICES

HEAD = "name: x\ntask: noop\n"
MAX_MESSAGE = 400          # characters: a message quotes a value, never all of it
# Time bounds tell a refusal (milliseconds of checking) from the faults they guard against
# (alias bombs and grids expanded, a quadratic duplicate check: minutes, or out of memory),
# with room for a loaded machine; they are no speed benchmark.
REFUSED_S = 20.0
SECONDS_S = 5.0            # where the fault costs seconds, not minutes (a 10M-step grid built, a 2 MB file parsed)


def _refused(tmp_path: Path, text: str | bytes, *words: str, within_s: float = REFUSED_S) -> str:
    """Load `text` as a spec file: SpecError within `within_s`, one short line, with `words`."""
    path = tmp_path / "hostile.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    start = time.monotonic()
    with pytest.raises(SpecError) as info:
        SearchSpace.from_yaml(path)
    took = time.monotonic() - start
    message = str(info.value)
    assert took < within_s, took
    assert "\n" not in message and len(message) < MAX_MESSAGE, message[:1000]
    for word in words:
        assert word in message, (word, message)
    return message


def _laughs(levels: int, inline: bool = False) -> str:
    """The billion-laughs document: each level a list of ten aliases of the one below."""
    lines = ["a0: &a0 [lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return HEAD + "\n".join(lines) + f"\ndecisions:\n  - name: a\n    choices: [*a{levels - 1}]\n"


@pytest.mark.parametrize("levels", [7, 10])
def test_alias_bomb_is_refused_before_anything_expands_it(tmp_path: Path, levels: int) -> None:
    _refused(tmp_path, _laughs(levels), "hostile.yaml", "aliases", "200000")


def test_alias_to_a_list_in_an_error_message_is_quoted_short(tmp_path: Path) -> None:
    """Below the alias bound, a bad value in a message is cut, not printed whole."""
    text = HEAD + "decisions:\n  - name: a\n    choices: [&b [" + ", ".join(["xxxxxxxxxx"] * 500) + "], *b]\n"
    message = _refused(tmp_path, text, "decisions[0].choices[0]", "expected a string, number or bool")
    assert "..." in message


def test_legit_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(HEAD + "decisions:\n  - &d {name: a, choices: [1, 2]}\n  - {<<: *d, name: b}\n")
    assert SearchSpace.from_yaml(path).keys == ("a", "b")


def test_spec_file_too_large_is_refused_unread(tmp_path: Path) -> None:
    text = HEAD + "decisions:\n  - name: a\n    choices: [" + ",".join(map(str, range(300_000))) + "]\n"
    _refused(tmp_path, text, "hostile.yaml", "larger than", within_s=SECONDS_S)


def test_billion_grid_steps_refused(tmp_path: Path) -> None:
    text = HEAD + "decisions:\n  - {name: a, range: [0, 1], steps: 1000000000}\n"
    _refused(tmp_path, text, "decisions[0].steps", "1000000000", str(MAX_CHOICES), within_s=SECONDS_S)


def test_ten_million_grid_steps_refused(tmp_path: Path) -> None:
    text = HEAD + "decisions:\n  - {name: a, range: [0, 1], steps: 10000000}\n"
    _refused(tmp_path, text, "decisions[0].steps", "10000000", within_s=SECONDS_S)


def test_whole_space_size_is_capped(tmp_path: Path) -> None:
    """Many decisions of allowed size: the sum over the space is capped too."""
    decisions = "".join(f"  - {{name: d{i}, range: [0, 1], steps: 9000}}\n" for i in range(12))
    _refused(tmp_path, HEAD + "decisions:\n" + decisions, "decisions[11]", "choices in all", "100000")


def test_repeat_expansion_is_capped(tmp_path: Path) -> None:
    inner = "".join(f"      - {{name: h{i}, choices: [1, 2]}}\n" for i in range(20))
    text = HEAD + "decisions:\n  - {name: n, choices: [1, 64]}\n  - repeat: n\n    decisions:\n" + inner
    _refused(tmp_path, text, "decisions[1]", "1000 decisions")


def test_sixteen_thousand_choices_refused_fast(tmp_path: Path) -> None:
    text = HEAD + "decisions:\n  - name: a\n    choices: [" + ",".join(map(str, range(16_000))) + "]\n"
    _refused(tmp_path, text, "decisions[0].choices", "16000", str(MAX_CHOICES))


def test_duplicate_check_is_linear(tmp_path: Path) -> None:
    """MAX_CHOICES distinct choices with a duplicate at the end: found in well under a second
    of checking (it was quadratic: 16k choices took 121 s)."""
    spec = {"name": "x", "decisions": [{"name": "a", "choices": [*map(str, range(MAX_CHOICES - 1)), "0"]}]}
    start = time.monotonic()
    with pytest.raises(SpecError, match=r"decisions\[0\].choices\[9999\]: duplicate choice '0'"):
        SearchSpace.from_dict(spec)
    assert time.monotonic() - start < 10.0      # quadratic, this took about a minute
    spec["decisions"][0]["choices"][-1] = True                  # bools never equal 1 / 0
    assert len(SearchSpace.from_dict(spec).slots[0].choices) == MAX_CHOICES


@pytest.mark.parametrize("text,line,key", [
    (HEAD + "decisions:\n  - {name: a, choices: [1]}\ntask: char_lm\n", 5, "task"),
    (HEAD + "decisions:\n  - {name: a, choices: [1]}\ndecisions: []\n", 5, "decisions"),
    (HEAD + "decisions:\n  - {name: a, choices: [1], name: b}\n", 4, "name"),
])
def test_duplicate_keys_are_refused_naming_key_and_line(tmp_path: Path, text: str, line: int, key: str) -> None:
    _refused(tmp_path, text, "hostile.yaml", f"line {line}", f"duplicate key '{key}'")


def test_non_utf8_spec_names_the_file(tmp_path: Path) -> None:
    text = (HEAD + "# caf\xe9\ndecisions:\n  - {name: a, choices: [1]}\n").encode("latin-1")
    _refused(tmp_path, text, "hostile.yaml", "not UTF-8", "offset 24")


def test_deep_nesting_is_one_line(tmp_path: Path) -> None:
    _refused(tmp_path, HEAD + "decisions: " + "[" * 50_000 + "]" * 50_000 + "\n", "hostile.yaml", "invalid YAML")


@pytest.mark.parametrize("spec,path", [
    ({"name": "x", "decisions": [{"name": "a\n", "choices": [1]}]}, "decisions[0].name"),
    ({"name": "x\n", "decisions": [{"name": "a", "choices": [1]}]}, "name"),
    ({"name": "a..b", "decisions": [{"name": "a", "choices": [1]}]}, "name"),
])
def test_names_must_match_whole(spec: dict, path: str) -> None:
    with pytest.raises(SpecError) as info:
        SearchSpace.from_dict(spec)
    assert info.value.path == path and "\n" not in str(info.value)
