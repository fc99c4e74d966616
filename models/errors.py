"""The errors models raise: plain ``ValueError`` subclasses, so callers need nothing from the rest of PerFeX."""


class ModelError(ValueError):
    """A model cannot be built or loaded as asked; the message says what to change."""


class ModelConfigError(ModelError):
    """A model option (or the model name) is invalid."""


class StateDictError(ModelError):
    """A state dict does not fit the architecture it is loaded into."""
