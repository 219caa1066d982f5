"""A real WebSocket peer (the `websockets` library) for tests/it/websocket.rs.

    ws_peer.py server            echo server on a free port; prints {"port": N}
                                 a path ending /refuse answers 403 (no upgrade), /silent never sends
    ws_peer.py client URL [K:V]  connects (extra headers K:V); prints {"open": true} or
                                 {"refused": STATUS, "body": ..., "headers": {...}}, then runs one
                                 command per stdin line, printing one JSON line for each:
        echo text N | echo binary N   send N bytes, expect them back: {"ok": bool, "len": N}
        send text N | send binary N   send N bytes, expect nothing: {"sent": N}
        wait_close                    wait until the connection closes: {"closed": true, "after_s": S}
        close                         close normally: {"closed": true}
Pings and compression are off on both sides, so an idle tunnel really is idle and the bytes
counted are the bytes sent.
"""
import asyncio
import http
import json
import os
import sys
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus


def say(obj):
    print(json.dumps(obj), flush=True)


async def server():
    def process_request(connection, request):
        if request.path.endswith("/refuse"):
            response = connection.respond(http.HTTPStatus.FORBIDDEN, "upstream says no\n")
            response.headers["x-refused-by"] = "origin"
            return response
        return None

    async def handler(ws):
        if ws.request.path.endswith("/silent"):
            await ws.wait_closed()
            return
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", 0, process_request=process_request, max_size=None,
                     ping_interval=None, compression=None) as s:
        port = s.sockets[0].getsockname()[1]
        say({"port": port})
        await asyncio.Future()


async def client(url, headers):
    try:
        ws = await connect(url, additional_headers=headers, max_size=None, ping_interval=None,
                           open_timeout=10, close_timeout=2, compression=None)
    except InvalidStatus as e:
        r = e.response
        say({"refused": r.status_code, "body": r.body.decode(errors="replace"),
             "headers": {k.lower(): v for k, v in r.headers.raw_items()}})
        return
    say({"open": True})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = line.split()
        try:
            if cmd[0] == "echo":
                n = int(cmd[2])
                data = ("x" * n) if cmd[1] == "text" else os.urandom(n)
                await ws.send(data)
                back = await asyncio.wait_for(ws.recv(), 20)
                say({"ok": back == data, "len": len(back)})
            elif cmd[0] == "send":
                n = int(cmd[2])
                await ws.send(("x" * n) if cmd[1] == "text" else os.urandom(n))
                say({"sent": n})
            elif cmd[0] == "wait_close":
                start = time.monotonic()
                try:
                    await asyncio.wait_for(ws.recv(), 60)
                    say({"closed": False})
                except ConnectionClosed:
                    say({"closed": True, "after_s": time.monotonic() - start})
            elif cmd[0] == "close":
                await ws.close()
                say({"closed": True})
                return
        except ConnectionClosed as e:
            say({"closed": True, "error": str(e)})
        except Exception as e:  # the test reads the error from the line
            say({"error": repr(e)})


def main():
    if sys.argv[1] == "server":
        asyncio.run(server())
    else:
        headers = [tuple(h.split(":", 1)) for h in sys.argv[3:]]
        asyncio.run(client(sys.argv[2], headers))


if __name__ == "__main__":
    main()
