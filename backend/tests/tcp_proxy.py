"""A TCP relay between the app and its database that a test can break on purpose.

It forwards bytes without reading them, so it works the same in front of a plain
server, a TLS server or PgBouncer. The faults are the ones Neon produces:

- `cut()`: the endpoint is gone: connections are reset, new ones refused.
- `blackhole()`: packets vanish: nothing is forwarded and new connections hang.
- `drop_connections()`: every open connection is reset, new ones work (a restart).
- `lose_next_reply()`: the next answer from the server is lost with its connection,
  after the server has acted on the request (a commit whose acknowledgement died).
- `restore()`: back to normal; connections that were black-holed are reset.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    lose_next_reply: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                writer.transport.abort()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._blackholed = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        await self._stop_listening()
        self._abort_all()

    async def cut(self) -> None:
        await self._stop_listening()
        self._abort_all()

    def blackhole(self) -> None:
        self._blackholed = True

    def drop_connections(self) -> None:
        self._abort_all()

    def lose_next_reply(self) -> None:
        for link in self._links:
            link.lose_next_reply = True

    async def restore(self) -> None:
        if self._blackholed:
            self._blackholed = False
            self._abort_all()
        if self._server is None:
            await self.start()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _abort_all(self) -> None:
        for link in list(self._links):
            link.abort()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        if self._blackholed:
            # Hold the connection open and silent until restore() or close().
            return
        try:
            server_reader, link.server = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            link.abort()
            self._links.discard(link)
            return
        link.tasks = [
            asyncio.create_task(self._pump(link, reader, link.server, replies=False)),
            asyncio.create_task(self._pump(link, server_reader, writer, replies=True)),
        ]

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        replies: bool,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if self._blackholed:
                    continue
                if replies and link.lose_next_reply:
                    break
                writer.write(data)
                await writer.drain()
        link.abort()
        self._links.discard(link)
