"""Errors shared across the package; each message names the file or argument at fault."""


class CheckpointError(ValueError):
    """A checkpoint (model or trainer state) that cannot be loaded."""
