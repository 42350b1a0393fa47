"""A stream handler that writes through a bounded buffer, as nginx writes its access log.

One formatted line, one write and one flush of stderr per request is the
expensive way to log. Records are kept here and written together: at least
once a second (by a daemon thread), as soon as they pass a count bound, when
a WARNING or worse arrives (with everything before it, in order), and at
shutdown: the app's lifespan switches it to writing every line at once
(`write_through`), as uvicorn ends a worker by re-raising SIGTERM, which runs
no exit handler; `logging.shutdown` flushes it at any other exit.
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
    """Records are kept as they come and formatted when written, together.

    Formatting a second's records in one go costs a fraction of formatting
    each in the middle of its request, among the request's own work. Records
    are queued on a deque (safe across threads); whoever writes them holds the
    write lock, which no record but a warning or the one past the bound waits for.
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
        self._records: deque[logging.LogRecord | Line] = deque()
        # Held while the queued records are formatted and written, so that they go out in order.
        self._writing = threading.Lock()
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the handler's lock held (Handler.handle). The message is
        # rendered now, as logging.handlers.QueueHandler does: its arguments may
        # change before the record is written.
        record.msg, record.args = record.getMessage(), None
        self._add(record)

    def add_line(self, line: Line) -> None:
        """Take a line as if its record had been handled here (see todo.http.logs.write_line)."""
        self._add(line)

    def _add(self, record: logging.LogRecord | Line) -> None:
        self._records.append(record)
        if record.levelno >= logging.WARNING or len(self._records) > self.max_records:
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
        # Records that cannot be written are dropped all the same: the buffer stays bounded.
        with self._writing:
            records = [self._records.popleft() for _ in range(len(self._records))]
            if not records:
                return
            lines = []
            for record in records:
                try:
                    lines.append(self._format(record) + self.terminator)
                except Exception:
                    failed = record if isinstance(record, logging.LogRecord) else record.as_record()
                    self.handleError(failed)
            self.stream.write("".join(lines))
            self.stream.flush()

    def _format(self, record: logging.LogRecord | Line) -> str:
        if isinstance(record, logging.LogRecord):
            return self.format(record)
        # The service's formatters write a line from its fields; any other from a record.
        format_line = getattr(self.formatter, "format_line", None)
        if format_line is not None:
            line: str = format_line(record)
            return line
        return self.format(record.as_record())
