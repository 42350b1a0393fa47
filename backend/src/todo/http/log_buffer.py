"""A stream handler that writes through a bounded buffer, as nginx writes its access log.

One write and one flush of stderr per request is the expensive way to log.
Each record is formatted as it comes (as StreamHandler does), and the lines
are kept here and written together: at least once a second (by a daemon
thread), as soon as they pass a count bound, when a WARNING or worse arrives
(with everything before it, in order), and at shutdown: the app's lifespan
switches it to writing every line at once (`write_through`), as uvicorn ends a
worker by re-raising SIGTERM, which runs no exit handler; `logging.shutdown`
flushes it at any other exit.

Lines are kept as text, not as records to format later: a second's worth of
records (a record, or a line's tuple and its fields) outlive the collector's
young generations and are walked by every collection until written, and a
batch formatted at once holds the interpreter away from the requests. Under
load (wrk, 100 connections, through PgBouncer) the access line cost a GET
15-20 µs of CPU more that way than formatted in its request.
"""

import contextlib
import logging
import threading
from collections import deque
from typing import Any, NamedTuple, TextIO

FLUSH_INTERVAL_SECONDS = 1.0
# A burst is written in a few writes, not one per line.
MAX_BUFFERED_RECORDS = 1000


class Line(NamedTuple):
    """A record as its fields alone, for a line written on every request (`add_line`)."""

    created: float
    levelno: int
    name: str
    msg: str
    fields: dict[str, Any]

    @property
    def msecs(self) -> float:
        """As LogRecord.msecs: the milliseconds within the second."""
        return int((self.created - int(self.created)) * 1000) + 0.0

    def as_record(self) -> logging.LogRecord:
        return logging.makeLogRecord(
            {
                "name": self.name,
                "levelno": self.levelno,
                "levelname": logging.getLevelName(self.levelno),
                "msg": self.msg,
                "created": self.created,
                "msecs": self.msecs,
                **self.fields,
            }
        )


class BufferedStreamHandler(logging.StreamHandler[TextIO]):
    """Records are formatted as they come; their lines are written together.

    Lines are queued on a deque (safe across threads); whoever writes them holds
    the write lock, which no record but a warning or the one past the bound waits for.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        interval: float = FLUSH_INTERVAL_SECONDS,
        max_records: int = MAX_BUFFERED_RECORDS,
    ) -> None:
        super().__init__(stream)
        self.interval = interval
        self.max_records = max_records
        self._lines: deque[str] = deque()
        # Held while the queued lines are written, so that they go out in order.
        self._writing = threading.Lock()
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the handler's lock held (Handler.handle).
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._add(text, record.levelno)

    def add_line(self, line: Line) -> None:
        """Take a line as if its record had been handled here (see todo.http.logs.write_line)."""
        # The service's formatters write a line from its fields; any other from a record.
        format_line = getattr(self.formatter, "format_line", None)
        try:
            text = format_line(line) if format_line is not None else self.format(line.as_record())
        except Exception:
            self.handleError(line.as_record())
            return
        self._add(text, line.levelno)

    def _add(self, text: str, levelno: int) -> None:
        self._lines.append(text)
        if levelno >= logging.WARNING or len(self._lines) > self.max_records:
            self._write()
        elif self._flusher is None:
            # Started on the first record: a process that never logs runs no thread.
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="log-flusher", daemon=True
            )
            self._flusher.start()

    def flush(self) -> None:
        # A stream that cannot be written raises here, as StreamHandler.flush
        # does (logging.shutdown expects it of a closed stderr).
        self._write()

    def write_through(self) -> None:
        """Write what is held, and from now on every record as it comes.

        For shutdown: uvicorn re-raises the SIGTERM it caught once it has shut
        down, and a process ended by a signal runs no exit handlers.
        """
        self.max_records = 0
        self._write()

    def close(self) -> None:
        self._stopping.set()
        self.flush()
        super().close()

    def _flush_periodically(self) -> None:
        while not self._stopping.wait(self.interval):
            # A stream that cannot be written has nowhere to say so: the lines are
            # dropped, and the next ones tried.
            with contextlib.suppress(Exception):
                self.flush()

    def _write(self) -> None:
        # Lines that cannot be written are dropped all the same: the buffer stays bounded.
        with self._writing:
            lines = [self._lines.popleft() for _ in range(len(self._lines))]
            if not lines:
                return
            terminator = self.terminator
            self.stream.write(terminator.join(lines) + terminator)
            self.stream.flush()
