"""Errors a user can act on. The CLI prints these as one line, never as a traceback."""


class CdpError(Exception):
    """A problem the user can fix: bad configuration, a missing workspace, a bad argument."""


class ConfigError(CdpError):
    """A configuration file is invalid. The message names the file and the key."""

    def __init__(self, path, message: str):
        self.path = str(path)
        self.detail = message
        super().__init__(f"{self.path}: {message}")
