"""gRPC origins for tests/it/grpc.rs (grpcio), one process for all of them.

Usage: server.py STUBS_DIR CERT_DIR NAME:MODE[:tls] ...
Each NAME gets a server on a free port, printed as "NAME PORT" once listening, then "READY".
MODE: ok (answers), unavailable (every Unary fails with UNAVAILABLE, Trailers-Only).
Every server also serves grpc.health.v1; Unary with text "health:NOT_SERVING" or
"health:SERVING" sets its overall status.
"""
import sys
import time
from concurrent import futures

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402
import echo_pb2  # noqa: E402
import echo_pb2_grpc  # noqa: E402


class Echo(echo_pb2_grpc.EchoServicer):
    def __init__(self, name, mode, health_servicer):
        self.name, self.mode, self.health = name, mode, health_servicer

    def Unary(self, request, context):
        if request.text.startswith("health:"):
            status = getattr(health_pb2.HealthCheckResponse, request.text[7:])
            self.health.set("", status)
            return echo_pb2.Msg(text="ok")
        if self.mode == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} is unavailable")
        if request.delay_ms:
            time.sleep(request.delay_ms / 1000)
        md = dict(context.invocation_metadata())
        trailing = [("x-served-by", self.name)]
        if "x-trace-bin" in md:
            trailing.append(("x-echo-bin", md["x-trace-bin"]))
        context.set_trailing_metadata(trailing)
        return echo_pb2.Msg(text=request.text, data=request.data)

    def ServerStream(self, request, context):
        chunk = b"x" * request.size
        for i in range(request.count):
            yield echo_pb2.Msg(text=str(i), data=chunk)

    def ClientStream(self, request_iterator, context):
        count, total = 0, 0
        for m in request_iterator:
            count += 1
            total += len(m.data)
        return echo_pb2.Msg(text=f"{count} messages, {total} bytes", count=count)

    def Bidi(self, request_iterator, context):
        for m in request_iterator:
            yield echo_pb2.Msg(text=m.text.upper())

    def Fail(self, request, context):
        code = next(c for c in grpc.StatusCode if c.value[0] == request.count)
        context.abort(code, request.text)


def main():
    certs = sys.argv[2]
    servers = []
    for spec in sys.argv[3:]:
        name, mode, *rest = spec.split(":")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        h = health.HealthServicer()
        h.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(h, server)
        echo_pb2_grpc.add_EchoServicer_to_server(Echo(name, mode, h), server)
        if rest and rest[0] == "tls":
            with open(f"{certs}/upstream.key", "rb") as k, open(f"{certs}/upstream.crt", "rb") as c:
                creds = grpc.ssl_server_credentials([(k.read(), c.read())])
            port = server.add_secure_port("127.0.0.1:0", creds)
        else:
            port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        print(name, port, flush=True)
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin (or dies)
    finally:
        for s in servers:
            s.stop(0)


if __name__ == "__main__":
    main()
