"""The SQLite database behind the join store: schema, pragmas, opening."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 2

# Columns without a declared type keep what was stored: a class stays TEXT ("1"), a
# regression value REAL. ``arrived`` is the store's clock at insertion; ``seq`` is the
# arrival order (eviction and expiry go by it: no index on ``arrived``, which cost as
# much as the table itself at insertion). A joined prediction stays as a row with
# ``joined_at`` set and its payload cleared, so that a repeated id is recognised: joining
# rewrites one table page (no indexed column changes), where deleting the row and
# recording its id elsewhere would rewrite four pages at random places.
_SCHEMA = """
CREATE TABLE predictions (
    seq INTEGER PRIMARY KEY, model TEXT NOT NULL, id TEXT NOT NULL, version TEXT NOT NULL,
    ts REAL NOT NULL, arrived REAL NOT NULL, prediction, score, joined_at REAL);
CREATE UNIQUE INDEX predictions_id ON predictions (model, id);
CREATE TABLE orphans (
    seq INTEGER PRIMARY KEY, model TEXT NOT NULL, id TEXT NOT NULL,
    label, ts REAL NOT NULL, arrived REAL NOT NULL);
CREATE UNIQUE INDEX orphans_id ON orphans (model, id);
CREATE INDEX orphans_age ON orphans (model, arrived);
"""

#: From version 1: the index on arrival time goes (the rows are kept as they are).
_MIGRATE_1 = """
DROP INDEX IF EXISTS predictions_age;
"""


def open_database(path: str | None) -> sqlite3.Connection:
    """Open (creating if needed) the store at ``path``, or an in-memory one for ``None``.

    A file is put in WAL mode with ``synchronous=NORMAL``: a committed transaction is in
    the WAL file before the commit returns, so it survives the process being killed;
    only an OS crash or power loss can drop the last commits (``FULL`` would fsync every
    commit to cover that, at several times the cost). ``locking_mode=EXCLUSIVE`` keeps
    the lock for the connection's life: a second process gets an error, not a silent
    share that would desynchronise the store's in-memory counters.
    """
    conn = sqlite3.connect(
        ":memory:" if path is None else path,
        timeout=1.0,
        isolation_level=None,  # explicit BEGIN/COMMIT: one transaction per store call
        check_same_thread=False,  # the store's lock serialises threads
    )
    try:
        if path is not None:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint (copy the WAL into the database, with two fsyncs) every 10000
            # pages (40 MiB) rather than 1000: random-id joins dirty pages all over the
            # index, and rarer checkpoints write each page once for many commits.
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
            conn.execute("PRAGMA journal_size_limit = 67108864")  # truncate the WAL to 64 MiB
        conn.execute("PRAGMA cache_size = -16384")  # 16 MiB page cache for index lookups
        _migrate(conn, path)
    except sqlite3.OperationalError as err:
        conn.close()
        raise RuntimeError(
            f"{path}: cannot open the label store ({err}); is another modelmon using it?"
        ) from err
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: str | None) -> None:
    """Create the schema in a new database, migrate one of version 1; refuse others."""
    conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, also in EXCLUSIVE mode
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version in (0, 1):
            for statement in (_MIGRATE_1 if version else _SCHEMA).split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise ValueError(
                f"{path}: label store schema version {version}, expected {SCHEMA_VERSION}"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
