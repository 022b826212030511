"""A small spreading front: one address per lane, each connection dealt to the next replica.

Agents that take one URL per lane (a subprocess agent reading ``OPENAI_BASE_URL``, an SDK with
a keep-alive pool) reach every replica through it. It works at the connection level (TCP bytes
copied both ways, nothing parsed), so it adds no decision and no journal: each attempt is still
decided by the coordinator and journaled by the replica that served it. A replica that refuses
the connection (dead, or its lane down) is skipped for the next one; if every replica refuses,
the client's connection is closed, as a refusing lane would.

Keep-alive connections stay with their replica, as behind any TCP load balancer: spreading is
per connection, not per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from urllib.parse import urlsplit

__all__ = ["Front"]


class Front:
    """Round-robin TCP fronts for lanes with several replicas, on their own loop and thread."""

    def __init__(self, replica_urls: dict[str, list[str]], host: str = "127.0.0.1") -> None:
        self.targets = {
            lane: [(urlsplit(u).hostname or "127.0.0.1", urlsplit(u).port or 80) for u in urls]
            for lane, urls in replica_urls.items()
            if len(urls) > 1
        }
        self.host = host
        self.urls: dict[str, str] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="routechaos-front", daemon=True)
        self._servers: list[asyncio.AbstractServer] = []
        self._conns: set[asyncio.Task[None]] = set()

    def start(self) -> Front:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        for lane, targets in self.targets.items():
            turn = itertools.cycle(range(len(targets)))

            async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter, t=targets, c=turn) -> None:
                task = asyncio.current_task()
                assert task is not None
                self._conns.add(task)
                try:
                    await self._relay(r, w, t, next(c))
                finally:
                    self._conns.discard(task)

            server = await asyncio.start_server(serve, self.host, 0)
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.urls[lane] = f"http://{self.host}:{port}"

    async def _relay(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, targets: list[tuple[str, int]], first: int
    ) -> None:
        up_r = up_w = None
        for k in range(len(targets)):
            host, port = targets[(first + k) % len(targets)]
            try:
                up_r, up_w = await asyncio.open_connection(host, port)
                break
            except OSError:
                continue
        if up_r is None or up_w is None:
            w.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    if dst.can_write_eof():
                        dst.write_eof()

        try:
            await asyncio.gather(pipe(r, up_w), pipe(up_r, w))
        finally:
            for writer in (up_w, w):
                writer.close()

    def stop(self) -> None:
        async def close() -> None:
            for s in self._servers:
                s.close()
            for t in list(self._conns):
                t.cancel()
            await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
