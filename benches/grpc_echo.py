"""The gRPC upstream of benches/compare.sh's grpc_unary scenario: grpcio's asyncio server with
one generic method, /portico.test.Echo/Unary, that answers each request's bytes as they came
(no generated code, no parsing: the cost on this side stays as small as grpcio makes it).

Usage: grpc_echo.py PORT
"""
import asyncio
import sys

import grpc


async def unary(request, context):
    return request


async def main(port):
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "portico.test.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(unary)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
