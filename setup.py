# setuptools cannot declare cffi modules in pyproject.toml; everything else lives there.
from setuptools import setup

setup(cffi_modules=["native/build.py:ffibuilder"])
