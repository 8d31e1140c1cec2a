"""The metadata store's schema, versioned with Alembic; `upgrade` brings a store to the head.

`pipeline.metadata.MetadataStore` calls `upgrade` when it opens a store whose revision is
not the head. Revisions live in ``versions/`` (``0001`` is the schema before it was
versioned: a store made then has no ``alembic_version`` table and is upgraded from the
start, its existing tables left as they are). To add a revision, write
``versions/NNNN_what.py`` with ``down_revision`` the previous head and move
`pipeline.metadata.SCHEMA_REVISION` to it.

Example:
    >>> import sqlalchemy as sa
    >>> engine = sa.create_engine("sqlite://")
    >>> upgrade(engine)
    >>> with engine.connect() as conn:
    ...     conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    '0002'
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

import sqlalchemy as sa

SCRIPT_LOCATION = os.path.dirname(os.path.abspath(__file__))
_PG_LOCK_KEY = 7_340_231_117  # pg_advisory_xact_lock key: one migration at a time per database


def config() -> object:
    """An Alembic Config for this script directory (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrades the store behind ``engine`` to ``revision``; concurrent callers take turns."""
    from alembic import command

    with _exclusive(engine) as conn:
        cfg = config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@contextlib.contextmanager
def _exclusive(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that no other process migrating this store runs beside.

    PostgreSQL: a transaction-scoped advisory lock (its DDL is transactional, so a second
    migrator then finds the tables made). SQLite: an flock on ``<file>.migrate-lock``, as
    the file lives on this machine.
    """
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        with open(f"{url.database}.migrate-lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with engine.begin() as conn:
                    yield conn
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    with engine.begin() as conn:
        if url.get_backend_name() == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield conn
