"""`benchmarks.report.write_section`: a runner rewrites its own section of BENCHMARKS.md and
leaves every other byte of the file as it was."""
from __future__ import annotations

import pytest

from benchmarks.report import command, header, write_section

PAGE = """# Benchmarks

intro

<!-- a:begin -->
## A
old a
<!-- a:end -->

text between

<!-- b:begin -->
## B
old b
<!-- b:end -->
"""


def test_a_section_is_replaced_in_place_and_the_rest_kept(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(PAGE)
    write_section("a", "## A\nnew a\n", md)
    assert md.read_text() == PAGE.replace("old a", "new a")


def test_a_new_section_is_appended(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(PAGE)
    write_section("c-d_2", "## C", md)
    assert md.read_text() == PAGE + "\n<!-- c-d_2:begin -->\n## C\n<!-- c-d_2:end -->\n"


def test_a_missing_file_starts_a_page(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    write_section("a", "## A", md)
    assert md.read_text() == "# Benchmarks\n\n<!-- a:begin -->\n## A\n<!-- a:end -->\n"


@pytest.mark.parametrize("page, error", [
    (PAGE + "<!-- a:begin -->\n", "more than once"),
    (PAGE.replace("<!-- a:end -->", ""), "only one of its markers"),
    (PAGE.replace("<!-- a:begin -->", "<!-- x -->").replace("<!-- a:end -->", "<!-- a:begin -->")
     .replace("<!-- x -->", "<!-- a:end -->"), "ends before it begins"),
])
def test_broken_markers_are_refused_and_the_file_left_alone(tmp_path, page, error):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(page)
    with pytest.raises(ValueError, match=error):
        write_section("a", "## A", md)
    assert md.read_text() == page


@pytest.mark.parametrize("name", ["", "a b", "a -->", "a:begin"])
def test_a_section_name_is_a_plain_word(tmp_path, name):
    with pytest.raises(ValueError, match="section name"):
        write_section(name, "x", tmp_path / "BENCHMARKS.md")


def test_the_header_names_the_command_as_typed_from_the_repository_root():
    from benchmarks.report import BENCHMARKS
    argv = [str(BENCHMARKS.parent / "benchmarks" / "x.py"), "--seeds", "5", "a b"]
    assert command(argv) == "python benchmarks/x.py --seeds 5 'a b'"
    text = header("python benchmarks/x.py")
    assert text.startswith("Command: `python benchmarks/x.py`\n\nMachine: ") and "Date: " in text
