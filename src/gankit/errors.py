"""Errors a user can act on.

Every message names what is wrong (a file, an option, a value) and how to fix it. The CLI
prints these without a traceback; anything else is a bug and keeps its traceback.
"""


class GankitError(Exception):
    """A problem with the user's input, data, options or files."""


class DataError(GankitError):
    """Missing, empty, corrupt or mis-shaped training or inference data."""


class CheckpointError(GankitError):
    """A checkpoint that is missing, corrupt, or belongs to another model."""


class ConfigError(GankitError):
    """An unknown option or an invalid option value."""


class TrainingDiverged(GankitError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
