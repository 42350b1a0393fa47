"""Prometheus metrics, served at GET /metrics when METRICS_ENABLED is set.

With one process the metrics live in the app's own registry. `make serve` runs
several workers, and a scrape reaches only one of them; with
PROMETHEUS_MULTIPROC_DIR set in the environment, every worker writes its
samples to files there, and /metrics adds up all of them.
"""

import os
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    multiprocess,
    values,
)
from prometheus_client.exposition import choose_encoder

from todo.config import Settings
from todo.db import Database

METRICS_PATH = "/metrics"
# The service answers most requests in a few milliseconds; the default buckets
# start at 5 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Anything else a client sends as a method is counted together, so that no
# client can mint new label values.
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class Metrics:
    def __init__(self, database: Database, multiprocess_dir: str | None) -> None:
        self.database = database
        self.multiprocess_dir = multiprocess_dir
        # Metrics register nowhere: in multiprocess mode they are read back from
        # the files, and the tests build many apps in one process.
        labels = ("method", "route", "status")
        self.requests = Counter("http_requests", "HTTP requests answered.", labels, registry=None)
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.pool_in_use = Gauge(
            "db_pool_connections_in_use",
            "Database connections checked out of this process's pool.",
            registry=None,
            multiprocess_mode="livesum",
        )
        # Sync (todo.sync, todo.db.notices): counted there as plain numbers and
        # brought over here, so the sync code needs no metrics of its own.
        self.streams_open = Gauge(
            "sync_streams_open",
            "Change streams open in this process.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.events_sent = Counter("sync_events", "Change stream events sent.", registry=None)
        self.notices_received = Counter(
            "sync_notices_received", "Change notices received from the database.", registry=None
        )
        self.listener_reconnects = Counter(
            "sync_listener_reconnects",
            "Times the change-notice connection was reopened after it dropped.",
            registry=None,
        )
        self._counted = {"events": 0, "notices": 0, "reconnects": 0}
        self.sync_figures: Callable[[], tuple[int, int, int, int]] | None = None
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        if multiprocess_dir is None:
            for metric in (
                self.requests,
                self.latency,
                self.pool_in_use,
                self.streams_open,
                self.events_sent,
                self.notices_received,
                self.listener_reconnects,
            ):
                self.registry.register(metric)
            ProcessCollector(registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "other", route, status)
        children = self._children.get(key)
        if children is None:
            labels = (key[0], route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        self.refresh()

    def refresh(self) -> None:
        """Bring the figures counted elsewhere up to date."""
        # Only queue pools count; SQLite in memory has a static one, NullPool none.
        self.pool_in_use.set(self.database.pool_checked_out() or 0)
        if self.sync_figures is None:
            return
        streams_open, events, notices, reconnects = self.sync_figures()
        self.streams_open.set(streams_open)
        for name, counter, total in (
            ("events", self.events_sent, events),
            ("notices", self.notices_received, notices),
            ("reconnects", self.listener_reconnects, reconnects),
        ):
            if total > self._counted[name]:
                counter.inc(total - self._counted[name])
                self._counted[name] = total

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        self.refresh()
        encoder, content_type = choose_encoder(accept or "")
        if self.multiprocess_dir is None:
            return encoder(self.registry), content_type
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return encoder(registry), content_type

    def process_exited(self) -> None:
        if self.multiprocess_dir is not None:
            # Drops this worker's live gauge; its counters stay in the totals.
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def _multiprocess_dir(settings: Settings) -> str | None:
    configured = settings.prometheus_multiproc_dir
    in_multiprocess_mode = values.ValueClass is not values.MutexValue
    if configured is None and not in_multiprocess_mode:
        return None
    if configured is None or not in_multiprocess_mode:
        raise ValueError(
            "PROMETHEUS_MULTIPROC_DIR must be set in the process environment (not only in "
            ".env): prometheus_client reads it when it is first imported"
        )
    if not configured.is_dir():
        raise ValueError(f"PROMETHEUS_MULTIPROC_DIR {configured} is not a directory")
    return str(configured)


def install_metrics(app: FastAPI, settings: Settings, database: Database) -> Metrics:
    # A `_created` series per counter doubles the output for nothing Prometheus uses.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = Metrics(database, _multiprocess_dir(settings))

    async def serve_metrics(request: Request) -> Response:
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    app.add_api_route(
        METRICS_PATH, serve_metrics, methods=["GET"], include_in_schema=False, name="metrics"
    )
    return metrics
