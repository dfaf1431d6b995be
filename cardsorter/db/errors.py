"""Named integrity failures of a reference database (all DatabaseError, so the CLI reports them)."""

from __future__ import annotations

from collections.abc import Iterable

from cardsorter.core.errors import DatabaseError

MAX_LISTED = 10


def listed(items: Iterable[object]) -> str:
    """The first few offending items and how many more, for an error message."""
    items = list(items)
    head = ", ".join(str(i) for i in items[:MAX_LISTED])
    more = f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return f"{head}{more}"


class MissingFileError(DatabaseError):
    """A file of the database layout is missing."""


class FormatError(DatabaseError):
    """A file is unreadable, malformed, or written by an unknown format version."""


class ChecksumMismatchError(DatabaseError):
    """A file's sha256 differs from the one recorded in manifest.json."""


class RowCountMismatchError(DatabaseError):
    """Embedding rows, index rows and metadata records do not describe the same cards."""


class DuplicateIdError(DatabaseError):
    """The same card id appears twice where ids must be unique."""


class NormError(DatabaseError):
    """Embedding rows whose L2 norm is outside [0.99, 1.01] (not unit vectors)."""


class NonFiniteError(DatabaseError):
    """Embedding rows holding NaN or Inf."""


class ModelMismatchError(DatabaseError):
    """The database was built with a different embedding model than the one in use."""


class DimensionMismatchError(DatabaseError):
    """Vectors whose dimension differs from the database's."""


class DeltaMismatchError(DatabaseError):
    """The delta directory belongs to a different snapshot."""
