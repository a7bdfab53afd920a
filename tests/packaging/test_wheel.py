"""What users get from ``pip install persona-plugins``: the wheel, its extras, the editable install.

The wheel is built from a copy of the checkout (so the build leaves no ``build/`` or ``*.egg-info``
behind in the working tree), installed into a fresh virtual environment without extras, probed,
then given the ``autogen`` and ``otel`` extras and probed again. Dependencies come from pip's
cache, so the test runs offline once the development environment has been installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
# Where each shipped package lives in the checkout (the setuptools package-dir mapping).
PACKAGE_DIRS = {
    "persona_plugins": "persona_plugins",
    "persona_plugins/adapters": "adapters",
    "persona_plugins/integrations": "integrations",
}
PUBLIC_MODULES = (
    "persona_plugins",
    "persona_plugins.adapters.autogen",
    "persona_plugins.integrations.llama_cpp",
    "persona_plugins.integrations.openai_compatible",
    "persona_plugins.integrations.opentelemetry",
)
FRAMEWORKS = (
    "autogen_core",
    "autogen_agentchat",
    "autogen_ext",
    "semantic_kernel",
    "agent_framework",
    "llama_cpp",
    "openai",
    "tiktoken",
    "opentelemetry.sdk",
)
CORE_REQUIREMENTS = {"pluggy", "pydantic", "opentelemetry-api", "pyyaml", "tomli"}
STEP_TIMEOUT_S = 300
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venv-*",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "out",
)


def run(command: Sequence[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; on failure, fail the test with its whole output (pip's included)."""
    try:
        done = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {STEP_TIMEOUT_S} s: {command}\n{exc.stdout}\n{exc.stderr}")
    if done.returncode != 0:
        pytest.fail(
            f"exit {done.returncode}: {' '.join(map(str, command))}\n"
            f"--- stdout ---\n{done.stdout[-8000:]}\n--- stderr ---\n{done.stderr[-8000:]}"
        )
    return done.stdout


def isolated_env() -> dict[str, str]:
    """The environment for the fresh venv: nothing from the checkout or this venv leaks in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PERSONA_PLUGINS_DISABLE_AUTOLOAD"] = "1"
    return env


def probe(python: Path, script: str, cwd: Path, *args: str) -> dict[str, Any]:
    """Run ``script`` in ``python`` and return the JSON object it prints last."""
    out = run([python, "-c", script, *args], cwd=cwd, env=isolated_env())
    return dict(json.loads(out.strip().splitlines()[-1]))


# Runs in the fresh venv with no extra installed.
CORE_PROBE = f"""
import importlib, json, sys

import persona_plugins
from persona_plugins import Completion, MissingExtraError, PersonaPipeline, Usage

loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FRAMEWORKS!r}
                or m.startswith("opentelemetry.sdk"))

class EchoModel:
    model_name = "echo"
    seen = None

    async def complete(self, messages, **settings):
        EchoModel.seen = [m.role for m in messages]
        return Completion(text="echo", usage=Usage(input_tokens=1, output_tokens=1))

turn = PersonaPipeline(EchoModel(), persona="math_teacher").run_sync("What is 12 * 7?")

def attempt(name):
    try:
        importlib.import_module(name)
    except MissingExtraError as exc:
        return {{"error": "MissingExtraError", "message": str(exc), "extra": exc.extra}}
    except BaseException as exc:
        return {{"error": type(exc).__name__, "message": str(exc)}}
    return {{"error": None}}

print(json.dumps({{
    "file": persona_plugins.__file__,
    "version": persona_plugins.__version__,
    "frameworks_after_import": loaded,
    "turn_persona": turn.persona.name if turn.persona else None,
    "turn_roles": EchoModel.seen,
    "autogen": attempt("persona_plugins.adapters.autogen"),
    "opentelemetry": attempt("persona_plugins.integrations.opentelemetry"),
}}))
"""

# Runs in the venv once the autogen and otel extras are installed.
EXTRAS_PROBE = """
import importlib, json, sys
from persona_plugins import MissingExtraError

modules = json.loads(sys.argv[1])
result = {}
for name in modules:
    try:
        module = importlib.import_module(name)
    except MissingExtraError as exc:
        result[name] = {"error": "MissingExtraError", "message": str(exc)}
    except BaseException as exc:
        result[name] = {"error": type(exc).__name__, "message": str(exc)}
    else:
        result[name] = {"error": None, "file": getattr(module, "__file__", None)}
print(json.dumps(result))
"""


def wheel_module(name: str) -> str:
    """``persona_plugins.cli`` -> the module it is in the wheel (``persona_plugins/cli``)."""
    return name.replace(".", "/")


def has_module(names: set[str], module: str) -> bool:
    path = wheel_module(module)
    return f"{path}.py" in names or f"{path}/__init__.py" in names


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


# -- fixtures: one wheel and one venv for the whole module -------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def source(work: Path) -> Path:
    """A snapshot of the checkout: the wheel and the expectations both come from it."""
    copy = work / "source"
    shutil.copytree(REPO, copy, ignore=COPY_IGNORE)
    return copy


@pytest.fixture(scope="module")
def wheel(work: Path, source: Path) -> Path:
    """The wheel, built (with build isolation, from pip's cache) from the snapshot."""
    out = work / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", out, source], cwd=work)
    wheels = sorted(out.glob("persona_plugins-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, got {wheels}"
    return wheels[0]


@pytest.fixture(scope="module", name="wheel_names")
def wheel_names_fixture(wheel: Path) -> set[str]:
    return wheel_names(wheel)


@pytest.fixture(scope="module")
def venv(work: Path, wheel: Path) -> dict[str, Any]:
    """A fresh venv with the wheel installed without extras; probed before any extra arrives."""
    root = work / "venv"
    run([sys.executable, "-m", "venv", root], cwd=work)
    python = root / "bin" / "python"
    run([python, "-m", "pip", "install", wheel], cwd=work, env=isolated_env())
    script = root / "bin" / "persona-plugins"
    help_run = None
    if script.is_file() and has_module(wheel_names(wheel), "persona_plugins.cli"):
        help_run = subprocess.run(
            [str(script), "--help"],
            cwd=work,
            env=isolated_env(),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
        )
    return {
        "root": root,
        "python": python,
        "core": probe(python, CORE_PROBE, work),
        "help": help_run,
    }


@pytest.fixture(scope="module")
def venv_with_extras(work: Path, wheel: Path, venv: dict[str, Any]) -> dict[str, Any]:
    """The same venv after ``pip install "<wheel>[autogen,otel,openai-compatible]"``."""
    python = venv["python"]
    extras = f"{wheel}[autogen,otel,openai-compatible]"
    run([python, "-m", "pip", "install", extras], cwd=work, env=isolated_env())
    return venv


# -- the wheel's contents ----------------------------------------------------------------------


@pytest.mark.slow
def test_wheel_ships_every_module_of_the_core_the_adapters_and_the_integrations(
    source: Path, wheel_names: set[str]
) -> None:
    expected = {
        f"{package}/{path.relative_to(source / directory).as_posix()}"
        for package, directory in PACKAGE_DIRS.items()
        for path in (source / directory).rglob("*.py")
    }
    assert expected, "found no source files to expect"
    missing = sorted(expected - wheel_names)
    assert not missing, (
        f"modules in the checkout are missing from the wheel (add their packages to "
        f"[tool.setuptools] packages in pyproject.toml): {missing}"
    )
    for module in PUBLIC_MODULES:
        assert has_module(wheel_names, module), f"{module} is not in the wheel"


@pytest.mark.slow
def test_wheel_ships_py_typed_and_the_persona_catalog(source: Path, wheel_names: set[str]) -> None:
    assert "persona_plugins/py.typed" in wheel_names
    catalog = sorted((source / "persona_plugins" / "personas").glob("*.yaml"))
    assert catalog, "the checkout has no persona catalog files"
    for path in catalog:
        assert f"persona_plugins/personas/{path.name}" in wheel_names, f"{path.name} not shipped"


@pytest.mark.slow
def test_wheel_has_one_top_level_package_and_no_tests_data_or_bytecode(
    wheel: Path, wheel_names: set[str]
) -> None:
    tops = {name.split("/", 1)[0] for name in wheel_names}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert tops - dist_info == {"persona_plugins"}, (
        f"the wheel installs top-level names other than persona_plugins: {sorted(tops - dist_info)}"
    )
    unwanted = sorted(
        name
        for name in wheel_names
        if {"tests", "benchmarks", "examples", "shared", "data", "__pycache__"}
        & set(name.split("/")[:-1])
        or name.endswith((".pyc", ".gguf"))
    )
    assert not unwanted, f"the wheel ships files users should not get: {unwanted}"
    with zipfile.ZipFile(wheel) as archive:
        (info,) = dist_info
        top_level = archive.read(f"{info}/top_level.txt").decode().split()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert top_level == ["persona_plugins"]
    assert "persona-plugins = persona_plugins.cli:main" in entry_points


@pytest.mark.slow
def test_wheel_requires_no_framework_without_an_extra(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(
            archive.read(n).decode()
            for n in archive.namelist()
            if n.endswith(".dist-info/METADATA")
        )
    requirements = [
        Requirement(line.split(":", 1)[1])
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    unconditional = {
        canonicalize_name(req.name)
        for req in requirements
        if req.marker is None or "extra" not in str(req.marker)
    }
    assert unconditional <= CORE_REQUIREMENTS, (
        f"the core depends on more than {sorted(CORE_REQUIREMENTS)}: "
        f"{sorted(unconditional - CORE_REQUIREMENTS)}"
    )


# -- installed without extras ------------------------------------------------------------------


@pytest.mark.slow
def test_core_imports_from_the_installed_wheel_without_any_framework(
    venv: dict[str, Any],
) -> None:
    core = venv["core"]
    assert Path(core["file"]).is_relative_to(site_packages(venv["root"])), core["file"]
    assert core["frameworks_after_import"] == [], (
        f"import persona_plugins pulled in frameworks: {core['frameworks_after_import']}"
    )


@pytest.mark.slow
def test_builtin_persona_catalog_loads_from_the_installed_wheel(venv: dict[str, Any]) -> None:
    core = venv["core"]
    assert core["turn_persona"] == "math_teacher"
    assert core["turn_roles"] == ["system", "user"], "the persona did not reach the model"


@pytest.mark.slow
def test_autogen_adapter_without_the_extra_names_the_install_line(venv: dict[str, Any]) -> None:
    outcome = venv["core"]["autogen"]
    assert outcome["error"] == "MissingExtraError", outcome
    assert outcome["extra"] == "autogen"
    assert 'pip install "persona-plugins[autogen]"' in outcome["message"]


@pytest.mark.slow
def test_opentelemetry_integration_without_the_extra_names_the_install_line(
    venv: dict[str, Any],
) -> None:
    outcome = venv["core"]["opentelemetry"]
    assert outcome["error"] == "MissingExtraError", outcome
    assert outcome["extra"] == "otel"
    assert 'pip install "persona-plugins[otel]"' in outcome["message"]


@pytest.mark.slow
def test_console_script_is_installed(venv: dict[str, Any], wheel_names: set[str]) -> None:
    script = venv["root"] / "bin" / "persona-plugins"
    assert script.is_file(), "the persona-plugins console script was not installed"
    if not has_module(wheel_names, "persona_plugins.cli"):
        pytest.skip("persona_plugins.cli is not in the wheel yet: the script cannot run")
    help_run = venv["help"]
    assert help_run.returncode == 0, (
        f"`persona-plugins --help` failed with no extra installed:\n{help_run.stderr[-4000:]}"
    )


# -- installed with the autogen and otel extras ------------------------------------------------


@pytest.mark.slow
def test_every_public_module_imports_with_the_autogen_and_otel_extras(
    venv_with_extras: dict[str, Any], wheel_names: set[str]
) -> None:
    modules = list(PUBLIC_MODULES)
    if has_module(wheel_names, "persona_plugins.cli"):
        modules.append("persona_plugins.cli")
    result = probe(
        venv_with_extras["python"], EXTRAS_PROBE, venv_with_extras["root"], json.dumps(modules)
    )
    failures = {name: r for name, r in result.items() if r["error"] is not None}
    assert not failures, (
        f"public modules failed to import with [autogen,otel,openai-compatible]: {failures}"
    )
    installed = site_packages(venv_with_extras["root"])
    for name, outcome in result.items():
        assert Path(outcome["file"]).is_relative_to(installed), (name, outcome["file"])


@pytest.mark.slow
def test_other_packages_in_the_wheel_import_or_name_their_extra(
    venv_with_extras: dict[str, Any], wheel_names: set[str]
) -> None:
    """A package for a framework not installed (Semantic Kernel here) must say which extra."""
    packages = sorted(
        name.removesuffix("/__init__.py").replace("/", ".")
        for name in wheel_names
        if name.endswith("/__init__.py")
        and not any(p.startswith("_") for p in name.split("/")[:-1])
    )
    result = probe(
        venv_with_extras["python"], EXTRAS_PROBE, venv_with_extras["root"], json.dumps(packages)
    )
    leaks = {name: r for name, r in result.items() if r["error"] not in (None, "MissingExtraError")}
    assert not leaks, f"packages fail to import with an error users cannot act on: {leaks}"


# -- the editable install of this checkout -----------------------------------------------------


def test_editable_install_imports_adapters_and_integrations_from_the_checkout(
    tmp_path: Path,
) -> None:
    """``pip install -e .`` maps ``persona_plugins.adapters`` onto ``adapters/`` (and likewise
    ``integrations/``), and exposes neither as a top-level module."""
    script = """
import importlib.util, json
import persona_plugins.adapters.autogen as autogen
import persona_plugins.integrations.llama_cpp as llama_cpp
import persona_plugins.integrations.opentelemetry as otel
print(json.dumps({
    "autogen": autogen.__file__,
    "llama_cpp": llama_cpp.__file__,
    "opentelemetry": otel.__file__,
    "top_level_adapters": importlib.util.find_spec("adapters") is not None,
    "top_level_integrations": importlib.util.find_spec("integrations") is not None,
}))
"""
    # Run outside the checkout, so only the installed finder can locate the packages.
    found = probe(Path(sys.executable), script, tmp_path)
    assert Path(found["autogen"]) == REPO / "adapters" / "autogen" / "__init__.py"
    assert Path(found["llama_cpp"]) == REPO / "integrations" / "llama_cpp" / "__init__.py"
    assert Path(found["opentelemetry"]) == REPO / "integrations" / "opentelemetry" / "__init__.py"
    assert not found["top_level_adapters"], "`import adapters` works: the mapping leaks"
    assert not found["top_level_integrations"], "`import integrations` works: the mapping leaks"
