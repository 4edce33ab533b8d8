"""Exceptions the runtime raises; each message is one actionable line."""


class EdgeError(Exception):
    """Base class for every error the runtime reports to a user."""


class ModelError(EdgeError):
    """A model file or bundle is missing, unreadable, unsupported or inconsistent."""


class ContractError(ModelError):
    """The model's input/output contract cannot be inferred or does not match the manifest."""


class BackendUnavailable(EdgeError):
    """The inference library for a backend is not installed."""
