"""Exception classes. Every message names the file or config key at fault and says what to do."""


class FluxError(Exception):
    """Base class; the CLI prints these without a traceback."""


class ConfigError(FluxError):
    """A configuration value is missing, malformed or inconsistent."""


class AnnotationError(FluxError):
    """An annotation file is malformed (the message carries file and line)."""


class DatasetMissingError(FluxError):
    """A dataset directory or file is absent; the message says which command fetches it."""


class DownloadError(FluxError):
    """A download failed after its retries."""


class ChecksumMismatchError(DownloadError):
    """A downloaded file's sha256 differs from the registry's; the file is kept aside, unused."""


class DecodeError(FluxError):
    """A media file could not be decoded; `kind` classifies the failure for accounting."""

    def __init__(self, path: str, kind: str, detail: str) -> None:
        super().__init__(f"{path}: {kind}: {detail}")
        self.path = path
        self.kind = kind
        self.detail = detail


class CheckpointError(FluxError):
    """A checkpoint cannot be read or does not fit the model (the message lists the keys at fault)."""


class TrainingError(FluxError):
    """Training cannot go on (a non-finite loss, a missing parent checkpoint, ...)."""
