"""The buffered log handler: bounded in time and size, warnings at once, nothing lost."""

import io
import logging
import threading
import time

from todo.http.log_buffer import BufferedStreamHandler


class Recorder(io.StringIO):
    """A stream that counts its writes and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        count = super().write(text)
        self.written.set()
        return count


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test.log_buffer.{id(handler)}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    return logger


def test_lines_wait_in_the_buffer_and_go_out_together() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=60)
    logger = _logger(handler)

    for number in range(3):
        logger.info("request %d", number)
    assert stream.getvalue() == ""

    handler.flush()
    assert stream.getvalue() == "request 0\nrequest 1\nrequest 2\n"
    assert stream.writes == 1
    handler.close()


def test_an_idle_process_writes_its_lines_within_the_interval() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=0.2)
    logger = _logger(handler)

    started = time.monotonic()
    logger.info("the last request before a lull")
    assert stream.written.wait(timeout=5)

    assert stream.getvalue() == "the last request before a lull\n"
    assert time.monotonic() - started < 2
    handler.close()


def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=60)
    logger = _logger(handler)

    logger.info("first")
    logger.warning("something is wrong")

    assert stream.getvalue() == "first\nsomething is wrong\n"
    logger.error("worse")
    assert stream.getvalue().endswith("something is wrong\nworse\n")
    handler.close()


def test_a_full_buffer_is_written_without_waiting() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=60, max_records=5)
    logger = _logger(handler)

    for number in range(20):
        logger.info("line %02d of a burst", number)

    # Never more than the bound waits: a burst goes out in a few writes, in order.
    assert len(stream.getvalue().splitlines()) >= 20 - 5
    assert 1 < stream.writes < 20
    handler.flush()
    assert stream.getvalue().splitlines() == [f"line {n:02d} of a burst" for n in range(20)]
    handler.close()


def test_closing_writes_what_is_left_and_stops_the_flusher() -> None:
    stream = Recorder()
    handler = BufferedStreamHandler(stream, interval=0.05)
    logger = _logger(handler)
    logger.info("the last line")

    handler.close()

    assert stream.getvalue() == "the last line\n"
    flusher = handler._flusher
    assert flusher is not None
    flusher.join(timeout=5)
    assert not flusher.is_alive()
