"""The harness's version, in a module of its own.

The package's ``__init__`` re-exports it, but a module inside the package (the cassette writer,
the CLI) reads it from here: importing the package for it would tie that module to everything
the package's ``__init__`` imports.
"""

__version__ = "0.1.0"
