"""A TCP relay on loopback that a test can cut and restore: a real network fault between a client and a real server.

The client connects to the relay, the relay to the server; `cut()` drops every connection and stops listening (new
connections are refused), `restore()` listens again on the same port. Nothing in the traffic is read or changed, so
TLS to the server works through it as it would directly.
"""

from __future__ import annotations

import asyncio
import contextlib

LOOPBACK = "127.0.0.1"
CHUNK = 64 * 1024


class Relay:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0  # chosen by the first start()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuses new connections and aborts the open ones, as a network partition would end them."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        server_writer: asyncio.StreamWriter | None = None
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
            pipes = [
                asyncio.create_task(_pipe(client_reader, server_writer)),
                asyncio.create_task(_pipe(server_reader, client_writer)),
            ]
            try:
                # Either side closing ends the connection (HTTP/1.1 never half-closes one).
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except OSError:
            pass  # the server is unreachable: the client sees its connection closed
        finally:
            self._connections.discard(task)
            for writer in (client_writer, server_writer):
                if writer is not None:
                    writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
