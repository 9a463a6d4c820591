"""Generates the client's gRPC stubs from ../proto at build time (build output, never committed)."""

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithStubs(build_py):
    def run(self):
        subprocess.run([sys.executable, str(HERE.parent / "scripts" / "gen_proto.py"), "--client"], check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithStubs})
