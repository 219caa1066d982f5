#!/usr/bin/env python3
"""A test OTLP/HTTP collector: decodes what it receives with the reference protobuf library.

    otlp_collector.py [--port N] [--out FILE] [--status CODE]

Listens on 127.0.0.1 (port 0: the OS picks), prints `listening PORT` on stdout once ready,
accepts `POST /v1/traces` with `content-type: application/x-protobuf`, decodes the body as an
`ExportTraceServiceRequest` with the `opentelemetry-proto` package (never with the code under
test), and appends one JSON object per span to FILE (default: stdout), one per line:

    {"trace_id": hex, "span_id": hex, "parent_span_id": hex or "", "trace_state": str,
     "name": str, "kind": "SPAN_KIND_SERVER", "start": ns, "end": ns, "flags": int,
     "attributes": {key: value}, "events": [{"name", "time", "attributes"}],
     "status": {"code": "STATUS_CODE_ERROR", "message": str},
     "resource": {key: value}, "scope": {"name", "version"}, "batch": n}

`batch` numbers the POSTs, so a test can see which spans travelled together. A body that does
not decode is answered 400 and logged to stderr. `--status` answers every POST with that status
instead of 200 (a collector that refuses). HTTP/1.1 with keep-alive, as real collectors do.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


def any_value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def span_json(span, resource, scope, batch):
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "trace_state": span.trace_state,
        "name": span.name,
        "kind": trace_pb2.Span.SpanKind.Name(span.kind),
        "start": span.start_time_unix_nano,
        "end": span.end_time_unix_nano,
        "flags": span.flags,
        "attributes": attributes(span.attributes),
        "events": [
            {"name": e.name, "time": e.time_unix_nano, "attributes": attributes(e.attributes)}
            for e in span.events
        ],
        "status": {"code": trace_pb2.Status.StatusCode.Name(span.status.code), "message": span.status.message},
        "resource": attributes(resource.attributes),
        "scope": {"name": scope.name, "version": scope.version},
        "batch": batch,
    }


class Collector(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    batches = 0
    out = sys.stdout
    status = 200

    def answer(self, status, body=b"", content_type="application/x-protobuf"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path != "/v1/traces":
            return self.answer(404, b"not found", "text/plain")
        if self.headers.get("content-type") != "application/x-protobuf":
            return self.answer(415, b"want application/x-protobuf", "text/plain")
        if Collector.status != 200:
            return self.answer(Collector.status, b"refused", "text/plain")
        request = trace_service_pb2.ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as e:
            print(f"otlp_collector: undecodable body ({len(body)} bytes): {e}", file=sys.stderr, flush=True)
            return self.answer(400, str(e).encode(), "text/plain")
        with Collector.lock:
            Collector.batches += 1
            lines = [
                json.dumps(span_json(span, rs.resource, ss.scope, Collector.batches))
                for rs in request.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            ]
            Collector.out.write("".join(line + "\n" for line in lines))
            Collector.out.flush()
        self.answer(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", default="-")
    p.add_argument("--status", type=int, default=200)
    a = p.parse_args()
    if a.out != "-":
        Collector.out = open(a.out, "a", encoding="utf-8")
    Collector.status = a.status
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Collector)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
