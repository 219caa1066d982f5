"""The gRPC client of tests/it/grpc.rs (grpcio): runs one suite against a target and prints
what it saw as one JSON object, for the Rust test to judge.

Usage: client.py STUBS_DIR TARGET SUITE [--ca FILE --authority NAME] [--md KEY=VALUE ...]
Suites: shapes (every call shape, metadata, errors, a deadline, 200 concurrent calls),
unary (one call), fail (Fail with --code and --text), bigstream (--count messages of --size).
"""
import argparse
import base64
import json
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import echo_pb2  # noqa: E402
import echo_pb2_grpc  # noqa: E402


def outcome(call):
    """code, details and metadata of a finished call (or of the RpcError it raised)."""
    out = {"code": call.code().name, "details": call.details() or ""}
    out["trailing"] = {k: (base64.b64encode(v).decode() if k.endswith("-bin") else v)
                       for k, v in (call.trailing_metadata() or ())}
    out["initial"] = {k: v for k, v in (call.initial_metadata() or ()) if not k.endswith("-bin")}
    return out


def unary(stub, md, timeout=10, **fields):
    try:
        resp, call = stub.Unary.with_call(echo_pb2.Msg(**fields), metadata=md, timeout=timeout)
        return dict(outcome(call), text=resp.text, data=base64.b64encode(resp.data).decode())
    except grpc.RpcError as e:
        return outcome(e)


def shapes(stub, md):
    r = {}
    r["unary"] = unary(stub, md + [("x-trace-bin", b"\xff\x00\xfe")], text="hello", data=b"\x00\x01")
    msgs = list(stub.ServerStream(echo_pb2.Msg(count=50, size=1000), metadata=md, timeout=10))
    r["server_stream"] = {"count": len(msgs), "bytes": sum(len(m.data) for m in msgs)}
    resp = stub.ClientStream(iter([echo_pb2.Msg(data=b"y" * 1000) for _ in range(20)]), metadata=md, timeout=10)
    r["client_stream"] = resp.text
    r["bidi"] = [m.text for m in stub.Bidi(iter([echo_pb2.Msg(text=f"m{i}") for i in range(10)]),
                                           metadata=md, timeout=10)]
    try:
        stub.Fail(echo_pb2.Msg(count=5, text="no such thing: caf\u00e9"), metadata=md, timeout=10)
        r["error"] = {"code": "OK"}
    except grpc.RpcError as e:
        r["error"] = outcome(e)
    start = time.monotonic()
    try:
        stub.Unary(echo_pb2.Msg(text="slow", delay_ms=3000), metadata=md, timeout=0.3)
        r["deadline"] = {"code": "OK"}
    except grpc.RpcError as e:
        r["deadline"] = dict(outcome(e), elapsed=time.monotonic() - start)
    futures = [stub.Unary.future(echo_pb2.Msg(text=str(i)), metadata=md, timeout=20) for i in range(200)]
    ok = 0
    for i, f in enumerate(futures):
        try:
            ok += f.result().text == str(i)
        except grpc.RpcError:
            pass
    r["concurrent_ok"] = ok
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stubs")
    ap.add_argument("target")
    ap.add_argument("suite")
    ap.add_argument("--ca")
    ap.add_argument("--authority")
    ap.add_argument("--md", action="append", default=[])
    ap.add_argument("--text", default="hi")
    ap.add_argument("--code", type=int, default=2)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--size", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--delay", type=int, default=0)
    a = ap.parse_args()
    options = [("grpc.max_receive_message_length", 64 << 20)]
    if a.authority:
        options.append(("grpc.ssl_target_name_override", a.authority))
        options.append(("grpc.default_authority", a.authority))
    if a.ca:
        with open(a.ca, "rb") as f:
            channel = grpc.secure_channel(a.target, grpc.ssl_channel_credentials(f.read()), options)
    else:
        channel = grpc.insecure_channel(a.target, options)
    stub = echo_pb2_grpc.EchoStub(channel)
    md = [tuple(kv.split("=", 1)) for kv in a.md]
    if a.suite == "shapes":
        out = shapes(stub, md)
    elif a.suite == "unary":
        out = [unary(stub, md, text=a.text, delay_ms=a.delay) for _ in range(a.repeat)]
    elif a.suite == "fail":
        try:
            stub.Fail(echo_pb2.Msg(count=a.code, text=a.text), metadata=md, timeout=a.timeout)
            out = {"code": "OK"}
        except grpc.RpcError as e:
            out = outcome(e)
    elif a.suite == "bigstream":
        start, total, n = time.monotonic(), 0, 0
        call = stub.ServerStream(echo_pb2.Msg(count=a.count, size=a.size), metadata=md, timeout=a.timeout)
        try:
            for m in call:
                total += len(m.data)
                n += 1
            out = {"code": "OK", "bytes": total, "messages": n}
        except grpc.RpcError as e:
            out = dict(outcome(e), bytes=total)
        out["elapsed"] = time.monotonic() - start
    else:
        raise SystemExit(f"unknown suite {a.suite}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
