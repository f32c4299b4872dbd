"""Errors shared across the package; each message names the file or argument at fault."""


class CheckpointError(ValueError):
    """A checkpoint (model or trainer state) that cannot be loaded."""


class UsageError(ValueError):
    """A request that cannot be carried out as asked (e.g. a run folder already in use)."""


def require_positive(flag: str, value: float) -> float:
    """``value`` if it is above zero; else a UsageError naming ``flag`` (e.g. "--temperature")."""
    if not value > 0:
        raise UsageError(f"{flag} must be positive, got {value}")
    return value
