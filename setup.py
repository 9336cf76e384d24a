"""Builds the optional C speedup; the package works without it."""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build C extensions, but carry on (pure Python) if the compiler fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure falls back
            print(f"gorillaws: C speedup not built ({exc}); using pure Python", file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"gorillaws: C speedup not built ({exc}); using pure Python", file=sys.stderr)


ext_modules = []
if not os.environ.get("GORILLAWS_NO_SPEEDUPS") and os.path.exists("gorillaws/_speedups.c"):
    ext_modules.append(Extension("gorillaws._speedups", ["gorillaws/_speedups.c"], optional=True))

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
