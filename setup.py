"""Builds the extension opnc._core by driving CMake; the rest is plain setuptools metadata (pyproject.toml)."""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent.parent
        # A build folder inside the tree keeps rebuilds incremental across `pip install .` runs.
        build_dir = Path(os.environ.get("OPNC_CMAKE_BUILD_DIR", ROOT / "build" / "python"))
        build_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "cmake", "-S", str(ROOT), "-B", str(build_dir),
                "-DCMAKE_BUILD_TYPE=Release",
                "-DOPNC_BUILD_TESTS=OFF",
                "-DOPNC_BUILD_PYTHON=ON",
                f"-DPython3_EXECUTABLE={sys.executable}",
                f"-DOPNC_PYTHON_OUT={out_dir}",
            ],
            check=True,
        )
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_core", "-j", jobs], check=True)


setup(ext_modules=[CMakeExtension("opnc._core")], cmdclass={"build_ext": CMakeBuild})
