"""A stream handler that writes through a bounded buffer, as nginx writes its access log.

One write and one flush of stderr per request is most of what a log line costs.
Lines are kept here and written together: at least once a second (by a daemon
thread), as soon as they pass a size bound, when a WARNING or worse arrives
(with everything before it, in order), and at shutdown: the app's lifespan
switches it to writing every line at once (`write_through`), as uvicorn ends
a worker by re-raising SIGTERM, which runs no exit handler; `logging.shutdown`
flushes it at any other exit.
"""

import contextlib
import logging
import threading
from typing import TextIO

FLUSH_INTERVAL_SECONDS = 1.0
# About 300 request lines: a burst is written in a few writes, not one per line.
MAX_BUFFERED_CHARS = 64 * 1024


class BufferedStreamHandler(logging.StreamHandler[TextIO]):
    def __init__(
        self,
        stream: TextIO,
        *,
        interval: float = FLUSH_INTERVAL_SECONDS,
        max_chars: int = MAX_BUFFERED_CHARS,
    ) -> None:
        super().__init__(stream)
        self.interval = interval
        self.max_chars = max_chars
        self._lines: list[str] = []
        self._chars = 0
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the handler's lock held (Handler.handle).
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        self._chars += len(line)
        if record.levelno >= logging.WARNING or self._chars > self.max_chars:
            try:
                self._write()
            except Exception:
                self.handleError(record)
        elif self._flusher is None:
            # Started on the first line: a process that never logs runs no thread.
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="log-flusher", daemon=True
            )
            self._flusher.start()

    def flush(self) -> None:
        # A stream that cannot be written raises here, as StreamHandler.flush
        # does (logging.shutdown expects it of a closed stderr).
        with self.lock:  # type: ignore[union-attr]  # created in Handler.__init__
            self._write()

    def write_through(self) -> None:
        """Write what is held, and from now on every line as it comes.

        For shutdown: uvicorn re-raises the SIGTERM it caught once it has shut
        down, and a process ended by a signal runs no exit handlers.
        """
        with self.lock:  # type: ignore[union-attr]
            self.max_chars = 0
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
        lines, self._lines, self._chars = self._lines, [], 0
        if lines:
            self.stream.write("".join(lines))
            self.stream.flush()
