"""Generates the client's gRPC stubs from ../proto before setuptools looks for packages (build output, never
committed), so an install from a checkout needs nothing but grpcio-tools at build time."""

import subprocess
import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
GENERATOR = HERE.parent / "scripts" / "gen_proto.py"

if GENERATOR.exists():
    subprocess.run([sys.executable, str(GENERATOR), "--client"], check=True)
setup()
