#!/usr/bin/env python3
"""Holds many idle keep-alive connections open on a proxy, for benches/compare.sh `idle10k`.

    idle_conns.py HOST PORT COUNT [PATH]

Opens COUNT connections (a few hundred at a time), sends one `GET PATH` on each, reads the whole
response, and keeps every connection open. Then prints `ready OK FAILED` on stdout and waits
until it is killed. compare.sh reads the proxy's RSS before and after, while the connections
are held. Needs `ulimit -n` above COUNT.
"""

import asyncio
import sys

CONCURRENT_OPENS = 256


async def one(host, port, request, sem, held, failures):
    async with sem:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            headers = head.lower()
            length = None
            for line in headers.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length is not None:
                await reader.readexactly(length)
            elif b"transfer-encoding: chunked" in headers:
                await reader.readuntil(b"0\r\n\r\n")
            if not 200 <= status < 300:
                raise RuntimeError(f"status {status}")
            held.append(writer)
        except Exception as e:  # noqa: BLE001 - counted and reported, not fatal
            if not failures:
                print(f"idle_conns: first failure: {e!r}", file=sys.stderr, flush=True)
            failures.append(e)


async def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/"
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: idle_conns\r\n\r\n".encode()
    sem = asyncio.Semaphore(CONCURRENT_OPENS)
    held, failures = [], []
    await asyncio.gather(*(one(host, port, request, sem, held, failures) for _ in range(count)))
    print(f"ready {len(held)} {len(failures)}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
