"""analogtrain: a NumPy reference simulator of analog in-memory DNN training.

Engine layers (each importable on its own, none imports the CLI)::

    config   -> devices -> pulses -> tile -> algorithms -> nn
"""

from analogtrain._version import __version__

__all__ = ["__version__"]
