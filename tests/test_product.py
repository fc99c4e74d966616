"""The product around the code: the `perfex` command, the install, the metadata files and the docs' links."""

import ast
import inspect
import os
import re
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import REPO, pip_install_project

import perfex.cli.analysis
import perfex.cli.scripts
import perfex.cli.study
from models.registry import families, script_prefix
from perfex.cli import command

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DOCS = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
SCRIPTS = {  # script -> the perfex command line that runs the same thing
    **{f"{script_prefix(model)}_{name}.py": [name, "--model", model]
       for name in ("train", "retrain", "test", "deploy") for model in families()},
    "data_augmentation.py": ["augment"], "au_analysis.py": ["analyse"], "user_study.py": ["study"],
}
ENTRY_POINTS = (perfex.cli.scripts, perfex.cli.analysis, perfex.cli.study)  # the modules whose main the scripts call


# ---------------------------------------------------------------- the perfex command


@pytest.mark.unit
def test_every_top_level_script_has_a_perfex_command():
    scripts = {p.name for p in REPO.glob("*.py")}
    assert scripts == set(SCRIPTS)
    assert set(command.COMMANDS) == {argv[0] for argv in SCRIPTS.values()}


def _recorded_calls(monkeypatch) -> list:
    """Replace the scripts' entry points by recorders of (module, arguments with argv resolved)."""
    calls = []
    for module in ENTRY_POINTS:
        real = module.main

        def record(*args, _module=module, _real=real, **kwargs):
            bound = inspect.signature(_real).bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            if arguments["argv"] is None:
                arguments["argv"] = sys.argv[1:]
            arguments["argv"] = list(arguments["argv"])
            calls.append((_module.__name__, arguments))

        monkeypatch.setattr(module, "main", record)
    return calls


@pytest.mark.unit
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_perfex_command_calls_what_the_script_calls(script, monkeypatch):
    """Each perfex command makes the same call, with the same arguments, as its top-level script."""
    calls = _recorded_calls(monkeypatch)
    rest = ["--data", "x.csv", "--out", "y", "--", "--model"]
    monkeypatch.setattr(sys, "argv", [script, *rest])
    runpy.run_path(str(REPO / script), run_name="__main__")
    assert command.main([*SCRIPTS[script], *rest]) == 0
    assert len(calls) == 2 and calls[0] == calls[1], calls
    assert calls[1][1]["argv"] == rest


@pytest.mark.unit
def test_model_may_come_anywhere_and_in_either_spelling(monkeypatch):
    calls = _recorded_calls(monkeypatch)
    assert command.main(["deploy", "--data", "a.csv", "--model=attn", "--force"]) == 0
    assert calls == [("perfex.cli.scripts", {"command": "deploy", "model": "attn", "argv": ["--data", "a.csv", "--force"]})]


@pytest.mark.unit
def test_help_lists_every_command_on_one_line(capsys):
    assert command.main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert listed == list(command.COMMANDS)
    assert command.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"perfex {PYPROJECT['project']['version']}"


@pytest.mark.unit
@pytest.mark.parametrize("argv, message", [
    ([], "no command given"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["train"], "train needs --model cnn|attn"),
    (["deploy", "--data", "x.csv"], "deploy needs --model cnn|attn"),
    (["test", "--model", "lstm"], "--model 'lstm': choose cnn or attn"),
    (["retrain", "--model"], "--model needs a value"),
    (["train", "--model", "cnn", "--model", "attn"], "--model given twice"),
])
def test_a_wrong_command_line_is_one_line_and_exit_status_2(argv, message, capsys):
    assert command.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("perfex: error: ") and message in captured.err


@pytest.mark.unit
@pytest.mark.parametrize("name, family", [("train", "attn"), ("retrain", "cnn"), ("test", "cnn"), ("deploy", "attn")])
def test_command_help_is_the_scripts_help(name, family, capsys, monkeypatch):
    with pytest.raises(SystemExit) as done:
        command.main([name, "--model", family, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: perfex {name} --model {family} ")
    parser = {"train": lambda: perfex.cli.scripts.train_parser(family, False), "retrain": lambda: perfex.cli.scripts.train_parser(family, True),
              "test": lambda: perfex.cli.scripts.test_parser(family), "deploy": lambda: perfex.cli.scripts.deploy_parser(family)}[name]
    monkeypatch.setattr(sys, "argv", [f"{perfex.cli.scripts.SCRIPT_PREFIX[family]}_{name}.py"])
    script_help = parser().format_help()
    # the same text after the usage block (whose line wrapping depends on the program name)
    assert shown.split("\n\n", 1)[1] == script_help.split("\n\n", 1)[1]


@pytest.mark.unit
def test_help_without_a_model_shows_the_flags_and_says_they_serve_both(capsys):
    with pytest.raises(SystemExit):
        command.main(["test", "--help"])
    shown = capsys.readouterr().out
    assert shown.startswith("perfex test --model cnn|attn [options]") and "usage: perfex test --model cnn " in shown


@pytest.mark.unit
@pytest.mark.parametrize("name", ["augment", "analyse", "study"])
def test_other_commands_show_their_scripts_help(name, capsys):
    with pytest.raises(SystemExit) as done:
        command.main([name, "--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.e2e
def test_python_m_perfex_command_answers_help_without_importing_torch():
    probe = ("import runpy, sys; sys.argv = ['perfex', '--help']\n"
             "try: runpy.run_module('perfex.cli.command', run_name='__main__')\n"
             "except SystemExit as e: print('exit', e.code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("exit 0 False")
    assert all(f"\n  {name} " in result.stdout for name in command.COMMANDS)
    direct = subprocess.run([sys.executable, "-m", "perfex.cli.command", "train"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert direct.returncode == 2 and direct.stderr.count("\n") == 1


# ---------------------------------------------------------------- install and metadata


@pytest.mark.e2e
def test_pip_install_gives_the_perfex_command_and_the_package_data(tmp_path):
    """pip install of the project (no dependencies): the console script runs from another folder, the rating
    page's template is installed, the licence is in the metadata."""
    target = pip_install_project(tmp_path)
    assert (target / "perfex" / "tools" / "study" / "rate_template.html").is_file()
    assert (target / "perfex" / "cli" / "command.py").is_file()
    info = next(target.glob("perfex-*.dist-info"))
    assert "MIT" in (info / "METADATA").read_text()
    assert any(p.name == "LICENSE" for p in info.rglob("*"))
    script = target / "bin" / "perfex"
    assert script.is_file()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "usage: perfex COMMAND" in result.stdout, result.stderr


def _requirements() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    return dict(re.match(r"([A-Za-z0-9_.\-]+)(.*)", line).groups() for line in lines if line)


def _declared() -> dict[str, str]:
    project = PYPROJECT["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    pairs = [re.match(r"([A-Za-z0-9_.\-]+)(.*)", spec).groups() for spec in specs]
    assert len({name for name, _ in pairs}) == len(pairs), "a package is declared twice"
    return dict(pairs)


@pytest.mark.unit
def test_requirements_and_pyproject_name_the_same_packages_and_versions():
    required, declared = _requirements(), _declared()
    assert list(required)[0] == "torch" and re.fullmatch(r"==\d+\.\d+\.\d+", required["torch"])
    assert set(required) == set(declared)
    assert declared["torch"] == ">=2.2"
    assert tuple(map(int, required["torch"][2:].split("."))) >= (2, 2)
    assert {name: spec for name, spec in required.items() if name != "torch"} == \
           {name: spec for name, spec in declared.items() if name != "torch"}


@pytest.mark.unit
def test_extras_and_entry_point():
    project = PYPROJECT["project"]
    assert set(project["optional-dependencies"]) == {"onnx", "explain", "study", "test", "bench"}
    assert project["scripts"] == {"perfex": "perfex.cli.command:main"}
    assert "onnxruntime" in " ".join(project["dependencies"])
    # the package never imports the benchmark's peers
    for path in (REPO / "perfex").rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "aeon" not in imported, path


@pytest.mark.unit
def test_citation_and_licence():
    citation = (REPO / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", citation, re.M)
    assert re.search(rf"^version: {re.escape(PYPROJECT['project']['version'])}$", citation, re.M)
    assert "https://github.com/kodavatiSrikar/PerFeX-Personality-of-a-Facial-Expression" in citation
    assert "https://umbvrlab.github.io/perfex" in citation
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 The PerFeX contributors" in licence
    assert PYPROJECT["project"]["license"] == "MIT"


# ---------------------------------------------------------------- README and docs


@pytest.mark.unit
def test_readme_is_a_front_door_with_one_test_command():
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) <= 16_000
    section = text.split("\n## Tests\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, re.S)
    assert blocks == ["python -m pytest -q -n 2\n"]
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "python -m pytest -q -n 2"
    for name in ("## Install", "## Quick start", "## The research loop", "## Inputs", "## Results", "## Citing",
                 "## Licence"):
        assert name in text


@pytest.mark.unit
def test_readme_indexes_every_docs_and_bench_page():
    text = (REPO / "README.md").read_text()
    index = text.split("\n## Documentation\n", 1)[1].split("\n## ", 1)[0]
    pages = sorted(p.relative_to(REPO).as_posix() for pattern in ("docs/*.md", "bench/*.md") for p in REPO.glob(pattern))
    missing = [page for page in pages if f"]({page})" not in index]
    assert not missing, f"add to the README's documentation index: {missing}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.unit
@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    """Every relative link and image in README.md, CHANGELOG.md and docs/*.md names a file that exists (and, for a
    #section of a Markdown file, a heading in it); no page points outside the project."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    links = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link}"
        assert path.is_relative_to(REPO), f"{page.name}: {link} points outside the project"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path), f"{page.name}: {link}"


@pytest.mark.unit
def test_docs_never_name_the_folder_outside_the_project():
    for page in [*DOCS, REPO / "CITATION.cff", REPO / "pyproject.toml"]:
        assert "../shared" not in page.read_text() and "shared/real" not in page.read_text(), page


# ---------------------------------------------------------------- test tiers



def _test_tiers(tree: ast.Module) -> list[set[str]]:
    """The tier markers on each test function of a module (``@pytest.mark.unit`` and the like)."""
    def tier(decorator: ast.expr) -> str | None:
        if isinstance(decorator, ast.Call):
            decorator = decorator.func
        return decorator.attr if isinstance(decorator, ast.Attribute) and decorator.attr in ("unit", "e2e") else None

    return [{t for t in map(tier, node.decorator_list) if t} for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


@pytest.mark.unit
def test_every_test_module_declares_one_tier():
    """One ``pytestmark = pytest.mark.<tier>`` line per module, or (this module) exactly one tier on every test."""
    undeclared = set()
    for path in sorted((REPO / "tests").glob("test_*.py")):
        text = path.read_text()
        tiers = re.findall(r"^pytestmark = pytest\.mark\.(\w+)$", text, re.M)
        per_test = _test_tiers(ast.parse(text))
        if tiers:
            assert len(tiers) == 1 and tiers[0] in ("unit", "e2e") and not any(per_test), path.name
        elif per_test and all(len(t) == 1 for t in per_test):
            continue
        else:
            undeclared.add(path.name)
    assert not undeclared, sorted(undeclared)
    markers = " ".join(PYPROJECT["tool"]["pytest"]["ini_options"]["markers"])
    assert markers.startswith("unit:") and " e2e:" in markers
