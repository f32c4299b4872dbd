"""Errors shared across the package; each message names the file or argument at fault."""


class CheckpointError(ValueError):
    """A checkpoint (model or trainer state) that cannot be loaded."""


class UsageError(ValueError):
    """A request that cannot be carried out as asked (e.g. a run folder already in use)."""
