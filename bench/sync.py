"""Live sync under load: write-to-event latency, and what idle streams cost.

For the service only (the floors have no streams). Everything here runs in
one asyncio loop on a thread of its own (`Background`) while wrk, started by
bench/run.py, drives the mixed workload:

- **The probe.** A user of its own (no wrk request touches it) keeps a few
  `GET /api/tasks/stream` connections open, and one more keep-alive
  connection PUTs a new title on one of its tasks every `interval` seconds.
  Each write's latency, at each stream, is the time from its response's
  arrival to the arrival of the event carrying its title. Uvicorn's workers
  share the listening socket, so the kernel picks the worker of every
  connection: the probe finds it in /proc (the worker holding the accepted
  socket) and opens streams until each worker has some, so that a write
  served by one worker is seen both on its own and on the other one, which
  only hears of it through PostgreSQL's NOTIFY. Every write is also counted
  at its first and its last arrival across all the streams.
- **Idle streams.** `count` streams spread over users of their own, with no
  writes: only heartbeats (and each stream's recheck of the database at
  every heartbeat). The workers' RSS is read before and after they open.

Raw HTTP/1.1 over asyncio streams: a thousand connections cost the client
little, and the read time of each event is taken as its chunk arrives.
"""

import asyncio
import concurrent.futures
import contextlib
import json
import math
import os
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# Users of the benchmark's own, never picked by wrk; the same ids every run,
# so that --reuse does not grow the users table.
_NAMESPACE = uuid.UUID("6f0a3c52-5d1e-4a8b-9f63-2b7c1e0d4a95")
PROBE_USER = uuid.uuid5(_NAMESPACE, "probe")
PROBE_TITLE = "sync probe "
# The probe's writes go round this many tasks: two writes to one task close together
# would come as one change (each task comes once, in its latest state).
PROBE_TASKS = 20
# How long after the last write the probe waits for its events.
GRACE_SECONDS = 2.0
# Streams opened at once while setting up the idle ones.
OPEN_BATCH = 50
READY_TIMEOUT = 30.0

T = TypeVar("T")


def idle_user(number: int) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"idle-{number}")


# --- the wire --------------------------------------------------------------


@dataclass
class Event:
    name: str
    id: str | None
    data: str


class EventParser:
    """Server-Sent Events from the bytes of a response body, as they come.

    Comment lines (the heartbeat) are counted and otherwise dropped.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self.comments = 0

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        events = []
        while (end := self._buffer.find(b"\n\n")) >= 0:
            block, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            name, event_id, data = "message", None, []
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    self.comments += 1
                    continue
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if key == "event":
                    name = value
                elif key == "id":
                    event_id = value
                elif key == "data":
                    data.append(value)
            if data or name != "message":
                events.append(Event(name, event_id, "\n".join(data)))
        return events


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The body of a chunked response, chunk by chunk, until its end."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        yield (await reader.readexactly(size + 2))[:-2]


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return b"".join([chunk async for chunk in _chunks(reader)])
    return b""


def _request(method: str, path: str, port: int, user: uuid.UUID, body: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"X-User-ID: {user}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, port: int, user: uuid.UUID) -> None:
        self.port, self.user = port, user
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.local_port = 0

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body).encode()
        message = _request(method, path, self.port, self.user, payload)
        reused = self._writer is not None and not self._writer.is_closing()
        try:
            status, headers, answer = await self._exchange(message)
        except (OSError, asyncio.IncompleteReadError) as error:
            await self.close()
            # The server closes a keep-alive connection left idle (uvicorn after 5 s, as
            # between the runs of one serving); that shows only at the next request, as
            # a reset or an end of stream before any byte of an answer: the server never
            # read the request. Like any HTTP client's pool, send it again, once, on a
            # new connection.
            stale = isinstance(error, ConnectionResetError) or (
                isinstance(error, asyncio.IncompleteReadError) and not error.partial
            )
            if not (reused and stale):
                raise
            try:
                status, headers, answer = await self._exchange(message)
            except (OSError, asyncio.IncompleteReadError):
                await self.close()
                raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, answer

    async def _exchange(self, message: bytes) -> tuple[int, dict[str, str], bytes]:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.local_port = self._writer.get_extra_info("sockname")[1]
        assert self._reader is not None
        self._writer.write(message)
        status, headers = await _read_head(self._reader)
        return status, headers, await _read_body(self._reader, headers)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class Stream:
    """One open `GET /api/tasks/stream`: when each probe write's event came."""

    def __init__(self, port: int, user: uuid.UUID, arrived: asyncio.Event | None = None) -> None:
        self.port, self.user = port, user
        self.ready = asyncio.Event()
        # Set at every probe event, and at the end (for whoever waits on several streams).
        self.arrived = arrived or asyncio.Event()
        self.parser = EventParser()
        # Probe write number -> time.monotonic() when its event was read.
        self.arrivals: dict[int, float] = {}
        self.events = 0
        self.ended = False
        self.local_port = 0
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.local_port = self._writer.get_extra_info("sockname")[1]
        self._writer.write(_request("GET", "/api/tasks/stream", self.port, self.user, None))
        status, headers = await _read_head(reader)
        if status != 200:
            body = await _read_body(reader, headers)
            raise RuntimeError(f"stream for {self.user}: {status} {body[:300]!r}")
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            async for chunk in _chunks(reader):
                arrived = time.monotonic()
                for event in self.parser.feed(chunk):
                    self._received(event, arrived)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.ended = True
            self.ready.set()
            self.arrived.set()

    def _received(self, event: Event, arrived: float) -> None:
        if event.name == "ready":
            self.ready.set()
        elif event.name == "changes" and self.ready.is_set():
            # Live events only: the catch-up may hold titles of an earlier serving's probe.
            self.events += 1
            for change in json.loads(event.data)["changes"]:
                title = change.get("task", {}).get("title", "")
                if title.startswith(PROBE_TITLE):
                    self.arrivals.setdefault(int(title.removeprefix(PROBE_TITLE)), arrived)
                    self.arrived.set()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# --- which worker holds a connection ----------------------------------------


def accepted_sockets(tcp_table: str, server_port: int) -> dict[str, int]:
    """From /proc/net/tcp's text: each accepted socket's inode, by its client's port."""
    found = {}
    for line in tcp_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if local_port == server_port and remote_port != 0:
            found[fields[9]] = remote_port
    return found


def connection_workers(server_port: int, workers: Sequence[int]) -> dict[int, int]:
    """Which worker pid holds the server's end of each connection, by client port."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            inodes |= accepted_sockets(Path(table).read_text(), server_port)
    owners = {}
    for pid in workers:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                owners[inodes[target[8:-1]]] = pid
    return owners


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# --- the probe ---------------------------------------------------------------


@dataclass
class ProbeResult:
    """One run's probe writes and what each stream saw of them."""

    # Write number -> time.monotonic() when its response had arrived.
    answered: dict[int, float] = field(default_factory=dict)
    failed: int = 0
    # The worker of the writes' connection (None: not found).
    writes_worker: int | None = None
    # Per stream: its worker (None: not found), and its arrivals by write number.
    streams: list[tuple[int | None, dict[int, float]]] = field(default_factory=list)


@dataclass
class Latency:
    """Write-to-event latencies in ms, pooled: per stream, and per write."""

    writes: int = 0
    failed: int = 0
    missed: int = 0
    same: list[float] = field(default_factory=list)
    other: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    streams_same: int = 0
    streams_other: int = 0
    streams_unknown: int = 0

    def add(self, other: "Latency") -> None:
        for name in ("writes", "failed", "missed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("same", "other", "first", "last"):
            getattr(self, name).extend(getattr(other, name))
        for name in ("streams_same", "streams_other", "streams_unknown"):
            setattr(self, name, max(getattr(self, name), getattr(other, name)))


def latency_of(result: ProbeResult) -> Latency:
    """Each write's latency at each stream (`missed` if its event never came)."""
    figures = Latency(writes=len(result.answered), failed=result.failed)
    known = result.writes_worker is not None
    for worker, _ in result.streams:
        if not known or worker is None:
            figures.streams_unknown += 1
        elif worker == result.writes_worker:
            figures.streams_same += 1
        else:
            figures.streams_other += 1
    for number, answered in result.answered.items():
        seen = []
        for worker, arrivals in result.streams:
            arrived = arrivals.get(number)
            if arrived is None:
                figures.missed += 1
                continue
            milliseconds = (arrived - answered) * 1000
            seen.append(milliseconds)
            if known and worker is not None:
                (figures.same if worker == result.writes_worker else figures.other).append(
                    milliseconds
                )
        if seen:
            figures.first.append(min(seen))
            figures.last.append(max(seen))
    return figures


class Probe:
    """The probe user's streams and writer, across the runs of one serving."""

    def __init__(self, port: int, workers: Sequence[int], interval: float) -> None:
        self.port, self.workers, self.interval = port, list(workers), interval
        self.streams: list[Stream] = []
        self.writer = Connection(port, PROBE_USER)
        self.task_paths: list[str] = []
        self.number = 0
        self._stop = asyncio.Event()
        self._arrived = asyncio.Event()
        self._writing: asyncio.Task[ProbeResult] | None = None

    async def open(self, per_worker: int, most: int) -> None:
        """Streams until each worker holds `per_worker` of them (or `most` are open)."""
        status, body = await self.writer.request("GET", f"/api/tasks?limit={PROBE_TASKS}")
        if status != 200:
            raise RuntimeError(f"probe tasks: {status} {body[:300]!r}")
        ids = [task["id"] for task in json.loads(body)]
        while len(ids) < PROBE_TASKS:
            status, body = await self.writer.request("POST", "/api/tasks", {"title": "sync probe"})
            if status != 201:
                raise RuntimeError(f"probe task: {status} {body[:300]!r}")
            ids.append(json.loads(body)["id"])
        self.task_paths = [f"/api/tasks/{task_id}" for task_id in ids]
        while len(self.streams) < most:
            stream = Stream(self.port, PROBE_USER, self._arrived)
            await stream.open()
            await asyncio.wait_for(stream.ready.wait(), READY_TIMEOUT)
            self.streams.append(stream)
            owners = connection_workers(self.port, self.workers)
            held = [owners.get(each.local_port) for each in self.streams]
            if None in held:
                # Not found in /proc: first and last arrivals only.
                if len(self.streams) >= per_worker * len(self.workers):
                    return
            elif all(held.count(pid) >= per_worker for pid in self.workers):
                return

    def start(self) -> None:
        self._stop.clear()
        self._writing = asyncio.create_task(self._write())

    async def stop(self) -> ProbeResult:
        self._stop.set()
        assert self._writing is not None
        result = await self._writing
        numbers = set(result.answered)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GRACE_SECONDS):
                while True:
                    self._arrived.clear()
                    if all(
                        numbers <= stream.arrivals.keys() or stream.ended for stream in self.streams
                    ):
                        break
                    await self._arrived.wait()
        owners = connection_workers(self.port, self.workers)
        result.writes_worker = owners.get(self.writer.local_port)
        for stream in self.streams:
            arrivals = {
                number: stream.arrivals[number] for number in numbers & stream.arrivals.keys()
            }
            result.streams.append((owners.get(stream.local_port), arrivals))
        return result

    async def _write(self) -> ProbeResult:
        result = ProbeResult()
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._stop.is_set():
            self.number += 1
            title = f"{PROBE_TITLE}{self.number}"
            try:
                path = self.task_paths[self.number % len(self.task_paths)]
                status, _ = await self.writer.request("PUT", path, {"title": title})
            except (OSError, asyncio.IncompleteReadError):
                status = 0
            if status == 200:
                result.answered[self.number] = time.monotonic()
            else:
                result.failed += 1
            due = max(due + self.interval, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), due - loop.time())
        return result

    async def close(self) -> None:
        await self.writer.close()
        for stream in self.streams:
            await stream.close()

    @property
    def ended(self) -> int:
        return sum(stream.ended for stream in self.streams)


async def open_idle(port: int, count: int, users: int) -> list[Stream]:
    """`count` streams over `users` users of their own, each through `ready`."""
    streams = [Stream(port, idle_user(number % users)) for number in range(count)]
    for start in range(0, count, OPEN_BATCH):
        batch = streams[start : start + OPEN_BATCH]
        await asyncio.gather(*(stream.open() for stream in batch))
        await asyncio.wait_for(
            asyncio.gather(*(stream.ready.wait() for stream in batch)), READY_TIMEOUT
        )
    return streams


async def close_all(streams: Sequence[Stream]) -> None:
    await asyncio.gather(*(stream.close() for stream in streams))


class Background:
    """An asyncio loop on a thread of its own, where the streams live while wrk runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def call(self, function: Callable[[], T]) -> T:
        """`function` run on the loop (for what must be called there, as Probe.start)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function())
            except Exception as error:
                future.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return future.result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


# --- the figures -------------------------------------------------------------


@dataclass
class SyncRound:
    """One round of one connection kind: the mixed load without and with idle streams."""

    rps_without: float
    rps_with: float
    latency: Latency
    latency_idle: Latency
    idle_streams: int
    # Per worker, in one order: idle streams held, and RSS before and once they were open.
    idle_per_worker: list[int]
    rss_before_kib: list[int]
    rss_with_kib: list[int]
    open_seconds: float
    # Streams the server ended while they were measured (their maximum age, a restart).
    ended: int = 0


# Idle streams are spread over this many users of their own.
IDLE_USERS = 100


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` of 1) of `values`."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


def p50_p95(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 0.5):.1f} / {percentile(values, 0.95):.1f}"


# The bar: the mixed load's rps with the idle streams open, over the same without.
MIN_IDLE_RPS_RATIO = 0.9


def kib_per_stream(each: SyncRound) -> float:
    """The workers' RSS growth as the idle streams opened, over the streams."""
    growth = sum(each.rss_with_kib) - sum(each.rss_before_kib)
    return growth / max(each.idle_streams, 1)


def _pooled(rounds: Sequence[SyncRound], name: str) -> Latency:
    pooled = Latency()
    for each in rounds:
        pooled.add(getattr(each, name))
    return pooled


def _latency_lines(rounds: dict[str, list[SyncRound]], idle: int, misses: list[str]) -> list[str]:
    lines = []
    for kind, each in rounds.items():
        for label, name in (("mixed", "latency"), (f"mixed + {idle} idle", "latency_idle")):
            pooled = _pooled(each, name)
            streams = f"{pooled.streams_same} / {pooled.streams_other}" + (
                f" (+{pooled.streams_unknown} unplaced)" if pooled.streams_unknown else ""
            )
            lines.append(
                f"| {kind} | {label} | {pooled.writes} | {streams} | {p50_p95(pooled.same)} "
                f"| {p50_p95(pooled.other)} | {p50_p95(pooled.first)} "
                f"| {p50_p95(pooled.last)} | {pooled.missed} |"
            )
            if pooled.missed or pooled.failed:
                misses.append(
                    f"{kind}, live sync ({label}): {pooled.failed} probe write(s) failed, "
                    f"{pooled.missed} event(s) never came"
                )
    return lines


def _idle_lines(rounds: dict[str, list[SyncRound]], idle: int, misses: list[str]) -> list[str]:
    lines = []
    for kind, each in rounds.items():
        ratio = statistics.median(r.rps_with / r.rps_without for r in each)
        workers = range(len(each[0].rss_before_kib))
        rss = ", ".join(
            f"{statistics.median(r.rss_before_kib[i] for r in each) / 1024:.0f} → "
            f"{statistics.median(r.rss_with_kib[i] for r in each) / 1024:.0f}"
            for i in workers
        )
        placed = each[-1].idle_per_worker
        spread = " / ".join(str(n) for n in placed) if sum(placed) else "?"
        lines.append(
            f"| {kind} | {statistics.median(r.rps_without for r in each):.0f} "
            f"| {statistics.median(r.rps_with for r in each):.0f} | {ratio:.2f} | {spread} "
            f"| {rss} | {statistics.median(kib_per_stream(r) for r in each):.1f} "
            f"| {statistics.median(r.open_seconds for r in each):.1f} |"
        )
        if ratio < MIN_IDLE_RPS_RATIO:
            misses.append(
                f"{kind}, {idle} idle streams: mixed rps {ratio:.2f}x the run without "
                f"< {MIN_IDLE_RPS_RATIO}"
            )
        ended = sum(r.ended for r in each)
        if ended:
            misses.append(f"{kind}, live sync: the server ended {ended} stream(s) while measured")
    return lines


def section(
    rounds: dict[str, list[SyncRound]], *, interval: float, users: int, misses: list[str]
) -> list[str]:
    """The report's live-sync section, one row per connection kind (and load)."""
    rounds = {kind: each for kind, each in rounds.items() if each}
    if not rounds:
        return []
    idle = next(iter(rounds.values()))[0].idle_streams
    return [
        "",
        "## Live sync (the service only)",
        "",
        "Write-to-event latency. While wrk runs the mixed load, a user of the benchmark's own "
        f"PUTs a new title on one of its tasks every {interval * 1000:.0f} ms over one "
        "keep-alive connection and holds a few streams open (`GET /api/tasks/stream`). The "
        "kernel picks each connection's worker; the probe finds it in /proc and opens streams "
        "until each worker holds two, so every write is seen on the worker that served it and "
        "on the other one, which hears of it only through PostgreSQL's NOTIFY. A latency runs "
        "from the write's response to its event at one stream, in ms, pooled over the rounds "
        "(negative: the event came first); a write's first and last arrival are over all of "
        "its streams. Cells are p50 / p95.",
        "",
        "| kind | load | writes | streams (writes' worker / other) | on the writes' worker "
        "| on the other worker | first arrival | last arrival | missed |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
        *_latency_lines(rounds, idle, misses),
        "",
        f"{idle} idle streams over {users} users of their own, opened before the run and left "
        "open through it: no writes for their users, so only heartbeats, each with its recheck "
        "of the database. Beside the same mixed run without them, in the same serving, the "
        "order alternating round by round. RSS per worker is VmRSS just before the streams "
        "opened and once all were `ready` (medians over the rounds); KiB per stream is the "
        f"workers' growth over the streams. Bar: rps with them >= {MIN_IDLE_RPS_RATIO}x.",
        "",
        "| kind | rps without | rps with | ratio | streams per worker | RSS per worker, MiB "
        "| KiB per stream | opened in s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
        *_idle_lines(rounds, idle, misses),
    ]
