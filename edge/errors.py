"""Exceptions the runtime raises; each message is one actionable line."""


class EdgeError(Exception):
    """Base class for every error the runtime reports to a user."""


class ModelError(EdgeError):
    """A model file or bundle is missing, unreadable, unsupported or inconsistent."""


class ContractError(ModelError):
    """The model's input/output contract cannot be inferred or does not match the manifest."""


class FamilyMismatch(ContractError):
    """The family asked for contradicts what the model says it is (its manifest, metadata or outputs)."""

    def __init__(self, given: str, found: str, model: str, evidence: str):
        super().__init__(given, found, model, evidence)  # as args, so the error pickles
        self.given, self.found, self.model, self.evidence = given, found, model, evidence

    def __str__(self) -> str:
        return self.text("family")

    def text(self, setting: str) -> str:
        """The error line naming the setting that asked for the family (`--family`, `model.family`)."""
        return f"{setting}: {self.given} contradicts {self.model}'s {self.evidence} ({self.found}); drop {setting}"


class BackendUnavailable(EdgeError):
    """The inference library for a backend is not installed."""


class SourceError(EdgeError):
    """A frame source cannot be opened or read (bad URI, missing device, unsupported format)."""


class SinkError(EdgeError):
    """An event sink cannot be set up or publish (bad URL, port in use, broker refused)."""


class ConfigError(EdgeError):
    """A daemon config file is unreadable or invalid (`edge run --config` and `edge check-config` exit 78)."""
