"""User-facing errors: one line that names the problem and the fix, shown without a traceback."""


class MlpbenchError(Exception):
    """A problem with the user's input or machine, reported as one line by the CLI (exit code 2)."""


class DataError(MlpbenchError):
    """A data file is missing, unreadable, corrupt or holds values outside MNIST's ranges."""


class ConfigError(MlpbenchError):
    """An unknown backend or scenario, or a setting out of range."""


class BackendUnavailable(MlpbenchError):
    """A backend cannot run on this machine (package missing, no device)."""


#: Exit codes of the ``mlpbench`` commands.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
