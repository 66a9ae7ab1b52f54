"""Build script for the optional C accelerator; everything else is declared in pyproject.toml.

``optional=True``: when the extension cannot be built (no C compiler, no Python headers), the
install goes on without it, and savestate runs in pure Python (``savestate.ACCELERATED`` is
then False).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "savestate.codec._speedups",
            sources=["savestate/codec/_speedups.c"],
            optional=True,
        )
    ]
)
