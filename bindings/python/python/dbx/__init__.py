"""dbx: one asyncio client over SQLite, Redis, PostgreSQL, MongoDB and Qdrant.

    import dbx

    async with await dbx.Dbx.connect("sqlite::memory:") as db:
        await db.sql.execute("CREATE TABLE t (id INTEGER, name TEXT)")
        await db.sql.execute("INSERT INTO t VALUES (?, ?)", [1, "Ada"])
        rows = await db.sql.query("SELECT * FROM t")   # [{"id": 1, "name": "Ada"}]

Every I/O method returns an awaitable; failures raise a subclass of
`DbxError` (one per dbx error kind).
"""

from typing import Optional


class DbxError(Exception):
    """Any dbx failure. `kind` is dbx's error kind ("timeout", "not_found"...),
    `transient` whether retrying may succeed; `backend`, `operation` and
    `code` (a server error code such as a SQLSTATE) when known."""

    kind: str = "other"
    transient: bool = False
    backend: Optional[str] = None
    operation: Optional[str] = None
    code: Optional[str] = None


class InvalidConfig(DbxError):
    """A bad URL or option."""


class InvalidInput(DbxError):
    """A bad argument: key, value, parameter, filter..."""


class Unsupported(DbxError):
    """The backend lacks the capability or operation."""


class ConnectError(DbxError):
    """The server could not be reached."""


class AuthError(DbxError):
    """The server refused the credentials."""


class Timeout(DbxError):
    """The operation ran out of time."""


class PoolTimeout(DbxError):
    """No pooled connection became free in time."""


class CircuitOpen(DbxError):
    """The circuit breaker is open: calls fail fast."""


class NotFound(DbxError):
    """The thing asked for does not exist."""


class QueryError(DbxError):
    """The server rejected the statement or command."""


class Conflict(DbxError):
    """A constraint, uniqueness or serialization conflict."""


class WrongType(DbxError):
    """The stored value has another type than the operation needs."""


class OutOfRange(DbxError):
    """A number does not fit."""


class DecodeError(DbxError):
    """A value could not be decoded."""


class Closed(DbxError):
    """The database was closed, or the handle comes from before a fork()."""


class OtherError(DbxError):
    """Anything else."""


from ._native import (  # noqa: E402  (the exceptions above must exist first)
    Collection,
    Dbx,
    Docs,
    Kv,
    Sql,
    VectorCollection,
    Vectors,
)

__all__ = [
    "Dbx", "Sql", "Kv", "Docs", "Collection", "Vectors", "VectorCollection",
    "DbxError", "InvalidConfig", "InvalidInput", "Unsupported", "ConnectError",
    "AuthError", "Timeout", "PoolTimeout", "CircuitOpen", "NotFound", "QueryError",
    "Conflict", "WrongType", "OutOfRange", "DecodeError", "Closed", "OtherError",
]
