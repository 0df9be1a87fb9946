"""A shim: kzoo's metadata, dependencies and extras are in pyproject.toml (PEP 621)."""

from setuptools import setup

setup()
