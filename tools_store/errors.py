"""The library's errors: callers catch ``LibraryError``, never the database driver's."""


class LibraryError(Exception):
    """Anything the tool library could not do (the database's own failures included)."""


class DatabaseUnavailable(LibraryError):
    """PostgreSQL could not be started or reached."""


class ToolExists(LibraryError):
    """A tool of that name exists and the registration was not meant as a new version."""


class ToolChanged(LibraryError):
    """A repair's version is no longer the current one (repaired, rolled back or retired)."""


class ToolNotFound(LibraryError):
    """No tool (or version) of that name."""


class IndexModelMismatch(LibraryError):
    """The index was built by another embedding model than the configured one."""


class InvalidToolName(LibraryError, ValueError):
    """A tool name that is not a safe snake_case identifier (a ValueError for validators)."""


class ItemMissing(LibraryError):
    """A session item that does not exist, or whose file is gone from the data directory."""


class BadQuery(LibraryError, ValueError):
    """A search query that is blank, or text that is not valid Unicode."""


class WorkflowNotFound(LibraryError):
    """No recorded workflow with that id."""
