"""The project's exceptions.

The engine raises only these; the CLI turns each into one line on stderr and an exit
code: ``ConfigError`` and ``InputError`` (the user's input was rejected before any
work was done) exit with 2, ``RunError`` (a run failed while it ran) exits with 1.
"""

from __future__ import annotations


class AnalogTrainError(Exception):
    """Base class of every error the project raises on purpose."""

    exit_code = 1


class ConfigError(AnalogTrainError, ValueError):
    """A configuration value, flag or config file entry is invalid.

    The message names the field and the allowed range, e.g.
    ``train.lr: must be > 0 (got -0.1)``. ``field`` is the dotted field path the message
    starts with (``"train.lr"``), or None; the config loader uses it to say where a bad
    value came from (a flag, a TOML file) without changing what the message says.
    """

    exit_code = 2

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class InputError(AnalogTrainError, ValueError):
    """A user-supplied file (data set, CSV, checkpoint) is missing, unreadable or malformed."""

    exit_code = 2


class RunError(AnalogTrainError, RuntimeError):
    """A run failed while running (e.g. NaN in the weights, an output that cannot be written)."""

    exit_code = 1


class NumericalError(RunError):
    """NaN or inf appeared in weights, activations or the loss."""


class Interrupted(AnalogTrainError):
    """The run was stopped by Ctrl-C or SIGTERM; the message says how to resume (exit 130)."""

    exit_code = 130
