"""Issue 8, typing: the hand-written stubs of opnc._core match the built module (mypy's stubtest),
the public Python API is fully annotated (mypy), and every public name has a docstring."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import opnc
import opnc._core

# A test dependency (Debian's python3-mypy, installed by tools/bootstrap): missing is a failure, not a skip.
assert importlib.util.find_spec("mypy"), "mypy is not installed (bash tools/bootstrap installs python3-mypy)"

SOURCE = Path(opnc.__file__).resolve().parent.parent  # the folder holding the opnc package
# The modules users import; opnc._core is covered by stubtest.
PUBLIC_MODULES = ["opnc", "opnc.api", "opnc.results", "opnc.errors", "opnc.oauth", "opnc.progress",
                  "opnc.logging_bridge"]


def mypy_env(tmp_path: Path) -> dict[str, str]:
    core_parent = Path(opnc._core.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(SOURCE), str(core_parent)]))}
    # An installed opnc is found by mypy as a typed package (py.typed) of the interpreter; mypy refuses
    # site-packages on MYPYPATH. A source checkout on PYTHONPATH needs MYPYPATH.
    if not site_packages(SOURCE):
        env["MYPYPATH"] = str(SOURCE)
    return env


def site_packages(path: Path) -> bool:
    return path.name in ("site-packages", "dist-packages")


def test_py_typed_and_the_stubs_ship_with_the_package():
    package = SOURCE / "opnc"
    assert (package / "py.typed").is_file()
    assert (package / "_core" / "__init__.pyi").is_file()
    assert (package / "_core" / "oauth.pyi").is_file()


def test_stubtest_passes_for_the_extension_module(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mypy.stubtest", "opnc._core", "--concise"],
                         cwd=tmp_path, env=mypy_env(tmp_path), capture_output=True, text=True, timeout=600)
    # --concise prints one line per mismatch and nothing on success.
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_the_public_api_is_fully_annotated(tmp_path):
    files = [str(SOURCE / "opnc" / f"{name}.py") for name in ("api", "results", "errors", "oauth", "progress",
                                                                "logging_bridge")]
    run = subprocess.run([sys.executable, "-m", "mypy", "--disallow-untyped-defs", "--disallow-incomplete-defs",
                          "--no-implicit-optional", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"),
                          *files], cwd=tmp_path, env=mypy_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr


def public_members(module_name: str):
    """(qualified name, object) of the module's public functions and classes (those it lists in
    ``__all__``, else those it defines) and of the public methods and properties of its classes."""
    module = __import__(module_name, fromlist=["_"])
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_") and getattr(v, "__module__", None) == module_name]
    for name in names:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
            continue
        yield f"{module_name}.{name}", obj
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if inspect.isfunction(value) or isinstance(value, property) or inspect.isroutine(value):
                    yield f"{module_name}.{name}.{attr}", value


def stub_docstrings() -> dict[str, str]:
    """Docstrings of the hand-written stubs of opnc._core, by "Class" and "Class.member": the
    documentation IDEs show for the compiled classes, which counts as theirs."""
    docs: dict[str, str] = {}
    for stub in (SOURCE / "opnc" / "_core").glob("*.pyi"):
        for node in ast.parse(stub.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            docs[node.name] = ast.get_docstring(node) or ""
            for previous, member in zip([None, *node.body], node.body):
                if isinstance(member, ast.FunctionDef):
                    docs[f"{node.name}.{member.name}"] = ast.get_docstring(member) or ""
                elif (isinstance(member, ast.Expr) and isinstance(member.value, ast.Constant)
                      and isinstance(previous, ast.AnnAssign) and isinstance(previous.target, ast.Name)):
                    docs[f"{node.name}.{previous.target.id}"] = str(member.value.value)
    return docs


def undocumented(module_name: str) -> list[str]:
    stubs = stub_docstrings()
    missing = []
    for qualified, obj in public_members(module_name):
        if (obj.__doc__ or "").strip() and not (inspect.isclass(obj) and obj.__doc__ == type.__doc__):
            continue
        # A member of a compiled class: its documentation may live in the stub.
        parts = qualified.split(".")
        owner = getattr(__import__(module_name, fromlist=["_"]), parts[-2], None) if len(parts) >= 2 else None
        if inspect.isclass(owner) and owner.__module__.startswith("opnc._core") and \
                stubs.get(f"{parts[-2]}.{parts[-1]}", "").strip():
            continue
        missing.append(qualified)
    return missing


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name):
    module = __import__(module_name, fromlist=["_"])
    assert (module.__doc__ or "").strip(), module_name
    assert undocumented(module_name) == []
