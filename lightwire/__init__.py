"""Lightwire: run, learn, improve. Shared runtime, contracts and the `lightwire` command."""

__version__ = "0.1.0"
