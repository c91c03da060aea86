"""The event history: ``nsctl watch --record DB`` writes it, ``nsctl history`` reads it.

One SQLite file (stdlib sqlite3) in WAL mode, so readers never block the
recorder.  Each recorder is a *run* (rows in ``runs``, with the boot id: inodes
and namespace ids mean something only within one boot); each batch of events
is written in one ``BEGIN IMMEDIATE`` transaction, with a busy timeout, so any
number of recorders and readers can share one file.  Snapshots (the
``nsctl snapshot`` document) are stored at start and every minute.  The database
and its side files are owner-only (0600, nsctl.kernel.files): they hold what
unprivileged users cannot see.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from datetime import UTC, datetime

from ..kernel.errors import NsctlError

DEFAULT_DB = "/var/lib/nsctl/history.db"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started TEXT NOT NULL, stopped TEXT, pid INTEGER,
    host TEXT, boot_id TEXT, trigger TEXT);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id), time TEXT NOT NULL,
    event TEXT NOT NULL, type TEXT, ns INTEGER, nsid INTEGER, cause TEXT, data TEXT);
CREATE INDEX IF NOT EXISTS events_ns ON events(ns);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id), time TEXT NOT NULL,
    document TEXT NOT NULL);
"""


class HistoryError(NsctlError):
    """A history database that cannot be used."""


def boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def connect(path: str, create: bool = True) -> sqlite3.Connection:
    """Open (and with ``create`` make and migrate) the database."""
    if not create and not os.path.exists(path):
        raise HistoryError(f"{path}: no history database (record one with "
                           f"nsctl watch --record {path})")
    if create:
        _make_private(path)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if create:
            conn.execute("PRAGMA journal_mode=WAL")
            _migrate(conn)
        else:
            _check_version(conn)
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path}: {exc}") from None
    return conn


#: The files SQLite keeps beside a database (rollback journal, WAL and its index).
SIDE_FILES = ("-journal", "-wal", "-shm")


def _make_private(path: str) -> None:
    """Create the database file 0600 before SQLite opens it, and check (and make 0600)
    the side files that exist: SQLite gives the side files it creates the database
    file's mode.  A symlink, FIFO or another user's file at any of them is refused."""
    from ..kernel.files import claim_existing, create_private, make_private_dir

    make_private_dir(os.path.dirname(os.path.abspath(path)))
    create_private(path)
    for suffix in SIDE_FILES:
        claim_existing(path + suffix)


def _check_version(conn: sqlite3.Connection) -> None:
    try:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.OperationalError:
        raise HistoryError("not an nsctl history database (no schema_version table)") from None
    if row[0] is None:
        raise HistoryError("history database without a schema version")
    if row[0] > SCHEMA_VERSION:
        raise HistoryError(f"history schema version {row[0]} is newer than this nsctl "
                           f"reads ({SCHEMA_VERSION}); use a newer nsctl")


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(stmt)
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if row[0] is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise HistoryError(f"history schema version {row[0]} is newer than this nsctl "
                               f"writes ({SCHEMA_VERSION}); use a newer nsctl")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class Recorder:
    """One recording run into a history database."""

    def __init__(self, path: str, trigger: str = "") -> None:
        self.path = path
        self.conn = connect(path)
        with self._tx():
            cur = self.conn.execute(
                "INSERT INTO runs (started, pid, host, boot_id, trigger) VALUES (?, ?, ?, ?, ?)",
                (_iso(), os.getpid(), os.uname().nodename, boot_id(), trigger))
            self.run = cur.lastrowid
        self.last_snapshot = 0.0

    def _tx(self):
        conn = self.conn

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, *rest):
                conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _Tx()

    def events(self, events: list[dict]) -> None:
        if not events:
            return
        rows = [(self.run, e["time"], e["event"], e.get("type"), e.get("ns"), e.get("id"),
                 e.get("cause"), json.dumps(e)) for e in events]
        with self._tx():
            self.conn.executemany(
                "INSERT INTO events (run, time, event, type, ns, nsid, cause, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def snapshot(self, document: dict) -> None:
        with self._tx():
            self.conn.execute("INSERT INTO snapshots (run, time, document) VALUES (?, ?, ?)",
                              (self.run, _iso(), json.dumps(document)))
        self.last_snapshot = time.monotonic()

    def close(self) -> None:
        try:
            with self._tx():
                self.conn.execute("UPDATE runs SET stopped = ? WHERE id = ?", (_iso(), self.run))
        finally:
            self.conn.close()


def _iso() -> str:
    from .watch import iso_now

    return iso_now()


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> str:
    """``10m``, ``2h``, ``30s``, ``1d`` (ago) or an ISO time -> the stored time format."""
    from .watch import iso_now

    now = time.time() if now is None else now
    m = _RELATIVE.match(text.strip())
    if m:
        return iso_now(now - float(m.group(1)) * _UNIT[m.group(2)])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HistoryError(f"--since {text!r}: not an ISO time nor a relative one "
                           f"like 10m, 2h, 1d") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return iso_now(when.timestamp())


_TYPED = re.compile(r"^([a-z]+):\[?(\d+)\]?$")


def _spec_filter(spec: str) -> tuple[str, list]:
    """SQL for SPEC: an inode or id (number), TYPE:[INODE], a bare TYPE, or else the
    display name the events carry (``name``)."""
    from ..kernel.nsfs import NS_TYPES

    spec = spec.strip()
    if spec.isdigit():
        return "(e.ns = ? OR e.nsid = ?)", [int(spec), int(spec)]
    m = _TYPED.match(spec)
    if m:
        return "(e.type = ? AND e.ns = ?)", [m.group(1), int(m.group(2))]
    if spec in NS_TYPES:
        return "e.type = ?", [spec]
    if not spec:
        raise HistoryError("give a namespace inode, id, TYPE:[INODE], TYPE or name")
    return "json_extract(e.data, '$.name') = ?", [spec]


def query(path: str, spec: str | None = None, since: str | None = None,
          events: list[str] | None = None) -> list[dict]:
    """Stored events, oldest first, each the dict watch printed plus ``run``, ``boot_id``."""
    conn = connect(path, create=False)
    try:
        where, params = [], []
        if spec:
            clause, args = _spec_filter(spec)
            where.append(clause)
            params += args
        if since:
            where.append("e.time >= ?")
            params.append(parse_since(since))
        if events:
            where.append(f"e.event IN ({','.join('?' * len(events))})")
            params += events
        sql = ("SELECT e.data, e.run, r.boot_id FROM events e JOIN runs r ON r.id = e.run"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY e.time, e.id")
        out = []
        for data, run, boot in conn.execute(sql, params):
            item = json.loads(data)
            item["run"] = run
            item["boot_id"] = boot
            out.append(item)
        return out
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path}: {exc}") from None
    finally:
        conn.close()
