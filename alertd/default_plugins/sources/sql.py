"""The `sql` source: one read-only query per poll; label columns, value columns, a timestamp.

SQLite files are read with the standard library (`path:`), opened read-only; any other
database (PostgreSQL, MySQL, ...) through a SQLAlchemy URL (`url:`, needs
`pip install 'alertd[sql]'` and the database's driver), inside a transaction that is rolled
back. The query may use the named parameters `:now`, `:interval` and `:since` (now minus
interval), all epoch seconds from the daemon's clock, so backtests and replays query the
same window live polls would.

    sources:
      orders:
        type: sql
        every: 1m
        path: /var/lib/shop/orders.sqlite
        query: |
          SELECT region, COUNT(*) AS orders_per_minute
          FROM orders WHERE created_at >= :since GROUP BY region
        # values: [orders_per_minute]   (default: the last column)
        # labels: [region]              (default: every other column)
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from alertd import hookimpl
from alertd.base import Source, SourceError
from alertd.config.schema import Secret
from alertd.model import Sample, make_labels
from alertd.sources.common import deadline, excerpt, parse_timestamp, to_value


class Sql(Source):
    """A read-only SQL query per poll: SQLite files built in, other databases via SQLAlchemy."""

    type_name = "sql"

    @dataclass(frozen=True)
    class Params:
        """Exactly one of `path` (SQLite) and `url` (SQLAlchemy); column roles by name."""

        query: str
        path: str | None = None
        url: Secret | None = None
        values: list[str] = ()
        labels: list[str] | None = None
        timestamp: str | None = None
        name: str | None = None
        max_rows: int = 10_000

        def check(self) -> None:
            if (self.path is None) == (self.url is None):
                raise ValueError('give either "path" (a SQLite file) or "url" (a SQLAlchemy URL), not both')
            if not self.query.strip():
                raise ValueError("query is empty; write a SELECT statement")
            if self.name is not None and len(self.values) > 1:
                raise ValueError('"name" renames a single value column; with several values the '
                                 "column names are the metric names")
            if self.max_rows <= 0:
                raise ValueError("max_rows must be a positive number")
            if self.url is not None:
                _check_url(self.url)

    def __init__(self, params, context):
        super().__init__(params, context)
        self._engine = None

    async def collect(self) -> list[Sample]:
        now = self.context.now()
        interval = float(self.context.interval or 60.0)
        binds = {"now": now, "interval": interval, "since": now - interval}
        run = self._sqlite if self.params.path is not None else self._sqlalchemy
        columns, rows = await self.context.run_blocking(run, binds, deadline(self.context))
        return self._samples(columns, rows, now)

    # -- the two back ends (run in a worker thread) ----------------------------------------
    def _sqlite(self, binds: dict, limit: float):
        path = Path(self.params.path)
        if not path.is_file():
            raise SourceError(f"the SQLite file {path} does not exist", "connect")
        try:
            conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                                   timeout=limit, check_same_thread=False)
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open the SQLite file {path} read-only: {exc}", "connect") from None
        try:
            conn.execute("PRAGMA query_only = ON")
            ends = time.monotonic() + limit
            conn.set_progress_handler(lambda: time.monotonic() > ends, 10_000)
            try:
                cursor = conn.execute(self.params.query, binds)
                rows = cursor.fetchmany(self.params.max_rows + 1)
            except sqlite3.Error as exc:
                raise self._query_error(exc, limit, time.monotonic() > ends) from None
            return [d[0] for d in cursor.description or ()], rows
        finally:
            conn.close()

    def _sqlalchemy(self, binds: dict, limit: float):
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(str(self.params.url), pool_pre_ping=True)
        ends = time.monotonic() + limit
        try:
            with self._engine.connect() as conn:
                _limit_statement(conn, limit, ends)
                try:
                    result = conn.execute(sqlalchemy.text(self.params.query), binds)
                    rows = result.fetchmany(self.params.max_rows + 1)
                    return list(result.keys()), [tuple(r) for r in rows]
                finally:
                    conn.rollback()  # read-only: whatever the query did is undone
        except sqlalchemy.exc.DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, sqlalchemy.exc.InterfaceError):
                raise SourceError(f"cannot reach the database: {_first(exc.orig)}", "connect") from None
            raise self._query_error(exc.orig, limit, time.monotonic() > ends) from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise SourceError(f"the database query failed: {_first(exc)}", "query") from None

    def _query_error(self, exc, limit: float, late: bool) -> SourceError:
        if late or "interrupted" in str(exc):
            return SourceError(f"the query did not finish within {limit:g}s and was stopped; "
                               "make it cheaper (an index?) or raise the source's timeout", "timeout")
        return SourceError(f"the query {excerpt(self.params.query, 60)} failed: {_first(exc)}", "query")

    # -- rows -> samples -------------------------------------------------------------------
    def _samples(self, columns: list[str], rows: list, now: float) -> list[Sample]:
        p = self.params
        if len(rows) > p.max_rows:
            raise SourceError(f"the query returned more than max_rows ({p.max_rows}) rows; "
                              "aggregate it (GROUP BY) or raise max_rows", "too_large")
        if not columns:
            raise SourceError("the query returned no columns; write a SELECT statement", "query")
        values = list(p.values) or [columns[-1]]
        missing = [c for c in [*values, *(p.labels or ()), *([p.timestamp] if p.timestamp else [])]
                   if c not in columns]
        if missing:
            raise SourceError(f"the query has no column {', '.join(repr(c) for c in missing)}; its "
                              f"columns are {', '.join(columns)}", "query")
        label_cols = list(p.labels) if p.labels is not None else [
            c for c in columns if c not in values and c != p.timestamp]
        index = {c: i for i, c in enumerate(columns)}
        out = []
        for row in rows:
            labels = make_labels({c: "" if row[index[c]] is None else row[index[c]] for c in label_cols})
            ts = now
            if p.timestamp:
                try:
                    ts = parse_timestamp(row[index[p.timestamp]])
                except ValueError as exc:
                    raise SourceError(f"column {p.timestamp!r}: {exc}", "bad_payload") from None
            for col in values:
                out.append(Sample(p.name or col, labels, ts, to_value(row[index[col]])))
        return out

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _check_url(url: str) -> None:
    try:
        import sqlalchemy.engine
    except ImportError:
        raise ValueError("a database url needs SQLAlchemy: pip install 'alertd[sql]' (and the "
                         "database's driver), or read a SQLite file with path:") from None
    try:
        sqlalchemy.engine.make_url(str(url))
    except Exception:
        raise ValueError("url is not a SQLAlchemy URL; write it like "
                         "postgresql+psycopg://user:${DB_PASSWORD}@host/shop") from None


def _limit_statement(conn, limit: float, ends: float) -> None:
    """A server-side statement timeout and read-only transaction where the dialect has one."""
    dialect = conn.dialect.name
    raw = conn.connection.dbapi_connection
    if dialect == "sqlite":
        raw.execute("PRAGMA query_only = ON")
        raw.set_progress_handler(lambda: time.monotonic() > ends, 10_000)
    elif dialect == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(limit * 1000)}")
    elif dialect in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(limit * 1000)}")


def _first(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


@hookimpl
def register_sources(register):
    register(Sql)
