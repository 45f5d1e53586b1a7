"""`hyperseq` argument, option and spec errors: one line naming the culprit, exit 2, and no
MLflow store or run is created and no Ray Tune experiment directory (validation happens before
Ray and before MLflow).

Kinds covered (56 error cases): unknown space name, missing spec file, a directory as spec, YAML
syntax error, a YAML tag that builds a Python object, an empty spec, a non-mapping spec, wrong
types and unknown keys in the spec, empty choices, bad ranges, unknown / missing task, values
a task rejects; option values of the wrong type, out of range (budgets, resources, seed,
retries), non-finite, unknown searcher / scheduler, path-escaping job names, a storage path
that is a file, a job name in use; `best` and `resume` errors (unknown job, bad job name, a
FINISHED job, a job recorded without resume state); unknown commands and options.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hyperseq.cli import cli
from hyperseq.tracking import tags as T
from hyperseq.tracking.mlflow_store import trial_config
from hyperseq.tracking.store import default_tracking_uri, open_store
from drivers import usage_error

GOOD = """\
name: tiny
task: noop
decisions:
  - name: a
    choices: [1, 2]
"""
BAD_SPECS = {
    "bad_yaml.yaml": ("name: x\ndecisions: [\n", ["bad_yaml.yaml", "invalid YAML", "line"]),
    "empty_choices.yaml": ("name: x\ntask: noop\ndecisions:\n  - name: a\n    choices: []\n",
                           ["decisions[0].choices", "empty"]),
    "bad_range.yaml": ("name: x\ntask: noop\ndecisions:\n  - name: lr\n    range: [1, 0.1]\n    steps: 3\n",
                       ["decisions[0].range", "[1, 0.1]"]),
    "unknown_task.yaml": ("name: x\ntask: nope\ndecisions:\n  - name: a\n    choices: [1]\n",
                          ["task", "'nope'"]),
    "no_task.yaml": ("name: x\ndecisions:\n  - name: a\n    choices: [1]\n", ["task"]),
    "bad_key_for_task.yaml": ("name: x\ntask: char_lm\ndecisions:\n  - name: bogus\n    choices: [1]\n",
                              ["bogus", "char_lm"]),
    "bad_value_for_task.yaml": ("name: x\ntask: char_lm\ndecisions:\n  - name: cell\n    choices: [lstm, tree]\n",
                                ["cell", "tree"]),
    "python_tag.yaml": ("name: !!python/object/apply:os.system ['echo pwned']\ntask: noop\n"
                        "decisions:\n  - name: a\n    choices: [1]\n", ["python_tag.yaml", "python/object"]),
    "empty.yaml": ("", ["empty.yaml", "mapping"]),
    "not_a_mapping.yaml": ("- a\n- b\n", ["not_a_mapping.yaml", "mapping"]),
    "decisions_type.yaml": ("name: x\ntask: noop\ndecisions: 5\n", ["decisions", "5"]),
    "choices_type.yaml": ("name: x\ntask: noop\ndecisions:\n  - name: a\n    choices: 3\n",
                          ["decisions[0].choices", "3"]),
    "steps_type.yaml": ("name: x\ntask: noop\ndecisions:\n  - name: lr\n    range: [0.1, 1]\n    steps: many\n",
                        ["decisions[0].steps", "'many'"]),
    "unknown_key.yaml": ("name: x\ntask: noop\ndecisions:\n  - name: a\n    choices: [1]\nfoo: 1\n",
                         ["foo", "unknown key"]),
    "space_name_escape.yaml": ("name: ../../evil\ntask: noop\ndecisions:\n  - name: a\n    choices: [1]\n",
                               ["name", "../../evil"]),
}
BAD_OPTIONS = [
    (["--trials", "0"], ["--trials", "0"]),
    (["--controller-options", "elite_size=-1"], ["--controller-options", "elite_size=-1"]),
    (["--controller-options", "lr"], ["--controller-options", "KEY=VALUE"]),
    (["--controller-options", "bogus=1"], ["--controller-options", "unknown Controller option", "bogus"]),
    (["--trials", "abc"], ["--trials", "abc"]),
    (["--concurrency", "0"], ["--concurrency", "0"]),
    (["--epochs", "-1"], ["--epochs", "-1"]),
    (["--gpus-per-trial", "-0.5"], ["--gpus-per-trial", "-0.5"]),
    (["--gpus-per-trial", "1.5"], ["--gpus-per-trial", "1.5"]),
    (["--gpus-per-trial", "64"], ["--gpus-per-trial", "GPU"]),       # more than any machine here
    (["--cpus-per-trial", "0"], ["--cpus-per-trial", "0"]),
    (["--cpus-per-trial", "512"], ["--cpus-per-trial", "512"]),
    (["--searcher", "grid"], ["--searcher", "grid"]),
    (["--scheduler", "pbt"], ["--scheduler", "pbt"]),
    (["--seed", "-3"], ["--seed", "-3"]),
    (["--max-failures", "-1"], ["--max-failures", "-1"]),
    (["--name", "../escape"], ["--name", "../escape"]),
    (["--name", "a/b"], ["--name", "a/b"]),
    (["--name", "-dash"], ["--name", "-dash"]),
    (["--name", ".."], ["--name", "'..'"]),
    (["--epochs", "abc"], ["--epochs", "abc"]),
    (["--concurrency", "1.5"], ["--concurrency", "1.5"]),
    (["--cpus-per-trial", "nan"], ["--cpus-per-trial", "nan"]),
    (["--gpus-per-trial", "inf"], ["--gpus-per-trial", "inf"]),
    (["--max-failures", "1.5"], ["--max-failures", "1.5"]),
]


@pytest.fixture
def env(tmp_path: Path) -> tuple[CliRunner, Path, list[str]]:
    db = tmp_path / "mlflow.db"
    (tmp_path / "good.yaml").write_text(GOOD)
    return CliRunner(), tmp_path, ["--tracking-uri", f"sqlite:///{db}", "--storage", str(tmp_path / "ray")]


def _check(result, words: list[str], tmp: Path) -> None:
    usage_error(result, words)
    assert not (tmp / "mlflow.db").exists() and not (tmp / "ray").exists()


def test_unknown_space_name(env) -> None:
    runner, tmp, opts = env
    _check(runner.invoke(cli, ["run", "no_such_space", *opts]), ["no_such_space"], tmp)


def test_missing_space_file(env) -> None:
    runner, tmp, opts = env
    _check(runner.invoke(cli, ["run", str(tmp / "missing.yaml"), *opts]), ["missing.yaml"], tmp)


@pytest.mark.parametrize("filename", sorted(BAD_SPECS))
def test_bad_spec(env, filename: str) -> None:
    runner, tmp, opts = env
    text, words = BAD_SPECS[filename]
    (tmp / filename).write_text(text)
    _check(runner.invoke(cli, ["run", str(tmp / filename), *opts]), words, tmp)


@pytest.mark.parametrize("args,words", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option(env, args: list[str], words: list[str]) -> None:
    runner, tmp, opts = env
    _check(runner.invoke(cli, ["run", str(tmp / "good.yaml"), *args, *opts]), words, tmp)


def test_directory_as_space(env) -> None:
    runner, tmp, opts = env
    (tmp / "spec_dir").mkdir()
    _check(runner.invoke(cli, ["run", str(tmp / "spec_dir"), *opts]), ["spec_dir", "no such spec file"], tmp)


def test_storage_is_a_file(env) -> None:
    runner, tmp, opts = env
    (tmp / "afile").write_text("")
    result = runner.invoke(cli, ["run", str(tmp / "good.yaml"), opts[0], opts[1], "--storage", str(tmp / "afile")])
    _check(result, ["--storage", "afile", "not a directory"], tmp)


@pytest.mark.parametrize("args,words", [
    (["resume"], ["JOB"]),
    (["resume", "nojob"], ["nojob"]),
    (["resume", "../escape"], ["JOB", "../escape"]),
    (["resume", "nojob", "--bogus"], ["--bogus"]),
])
def test_resume_errors(env, args: list[str], words: list[str]) -> None:
    runner, tmp, opts = env
    _check(runner.invoke(cli, [*args, opts[0], opts[1]]), words, tmp)


@pytest.mark.slow
@pytest.mark.parametrize("status,tags,words", [
    ("FINISHED", {}, ["done-job", "FINISHED", "nothing to resume"]),
    ("RUNNING", {}, ["done-job", "cannot be resumed"]),
    ("RUNNING", {T.TAG_OPTIONS: "{}", T.TAG_STORAGE: "/nonexistent/done-job"},
     ["done-job", "/nonexistent/done-job", "is not", "--storage"]),
])
def test_resume_of_a_job_that_cannot_be_resumed(env, status: str, tags: dict, words: list[str]) -> None:
    runner, tmp, opts = env
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    run_id, _ = open_store(uri).start_job("done-job", tags, {})
    if status != "RUNNING":
        open_store(uri).set_status(run_id, status)
    result = runner.invoke(cli, ["resume", "done-job", "--tracking-uri", uri])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    [run] = open_store(uri).search("")                     # nothing written: same run, same status
    assert run.info.run_id == run_id and run.info.status == status and not run.data.metrics


@pytest.mark.slow
def test_job_name_already_used(env) -> None:
    runner, tmp, opts = env
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    open_store(uri).start_job("taken", {}, {})
    result = runner.invoke(cli, ["run", str(tmp / "good.yaml"), "--name", "taken", *opts])
    assert result.exit_code == 2 and "'--name'" in result.stderr and "taken" in result.stderr
    assert "already exists" in result.stderr
    assert len(open_store(uri).search("")) == 1 and not (tmp / "ray").exists()


@pytest.mark.parametrize("args,words", [
    (["best"], ["JOB", "--all"]),
    (["best", "nojob"], ["nojob"]),
    (["best", "nojob", "--top", "-1"], ["--top", "-1"]),
    (["best", "nojob", "--format", "xml"], ["--format", "xml"]),
    (["best", "nojob", "--space", "s"], ["--space"]),
])
def test_best_errors(env, args: list[str], words: list[str]) -> None:
    runner, tmp, opts = env
    _check(runner.invoke(cli, [*args, opts[0], opts[1]]), words, tmp)


def test_unknown_command_and_option(env) -> None:
    runner, tmp, opts = env
    _check(runner.invoke(cli, ["fly"]), ["fly"], tmp)
    _check(runner.invoke(cli, ["run", str(tmp / "good.yaml"), "--bogus", "1"]), ["--bogus"], tmp)


def test_jobs_on_a_missing_store_lists_nothing_and_creates_nothing(env) -> None:
    runner, tmp, opts = env
    result = runner.invoke(cli, ["jobs", "--format", "json", opts[0], opts[1]])
    assert result.exit_code == 0 and result.stdout.strip() == "[]"
    assert not (tmp / "mlflow.db").exists()


def test_submit_forwards_controller_options(tmp_path) -> None:
    """`hyperseq submit --controller-options` reaches the driver's `run` command line."""
    import shlex

    from hyperseq.cluster.submit import entrypoint
    from hyperseq.jobs import prepare_job
    from controller.pairs import parse_pairs
    spec = prepare_job("char_lm_quick", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
                       storage=str(tmp_path / "s"), controller_options="lr=0.01,elite_size=0,tanh_c=null")
    args = shlex.split(entrypoint("char_lm_quick", spec, None))
    forwarded = args[args.index("--controller-options") + 1]
    assert parse_pairs(forwarded) == {"lr": 0.01, "elite_size": 0, "tanh_c": None}
