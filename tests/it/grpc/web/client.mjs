// The gRPC-Web clients of tests/it/grpc/web.rs. Prints one JSON object with what each saw.
//
//   node client.mjs DESCRIPTOR_SET BASE_URL binary|text [http1|http2]
//
// binary: @connectrpc/connect-node's gRPC-Web transport (application/grpc-web+proto) over
//         HTTP/1.1 or HTTP/2: unary with metadata, a server stream, an error status.
// text:   Google's grpc-web runtime (format "text": application/grpc-web-text, base64 both
//         ways) over xhr2's XMLHttpRequest: unary, a server stream, an error status.
// Messages come from the descriptor set protoc made of echo.proto (no generated code).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { create, createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const [descriptorSet, baseUrl, mode, version = "http1"] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSet)));
const Echo = registry.getService("portico.test.Echo");
const Msg = registry.getMessage("portico.test.Msg");
const out = {};

if (mode === "binary") {
  const { createClient, ConnectError } = await import("@connectrpc/connect");
  const { createGrpcWebTransport } = await import("@connectrpc/connect-node");
  const transport = createGrpcWebTransport({ baseUrl, httpVersion: version === "http2" ? "2" : "1.1" });
  const client = createClient(Echo, transport);
  const trailers = {};
  const res = await client.unary(
    { text: "hello web", data: new Uint8Array([0, 1, 2]) },
    { headers: { "x-trace-bin": "/wD+" }, onTrailer: (t) => t.forEach((v, k) => (trailers[k] = v)) },
  );
  out.unary = { text: res.text, data: Buffer.from(res.data).toString("base64"), trailers };
  let count = 0, bytes = 0;
  for await (const m of client.serverStream({ count: 20, size: 3000 })) {
    count += 1;
    bytes += m.data.length;
  }
  out.server_stream = { count, bytes };
  const failing = async (call) => {
    try {
      await call();
      return { code: 0 };
    } catch (e) {
      const err = ConnectError.from(e);
      return { code: err.code, message: err.rawMessage };
    }
  };
  out.error = await failing(() => client.fail({ count: 7, text: "not for you" }));
  // A route whose upstream answers a plain HTTP 503 page.
  out.http_error = await failing(() => client.unary({ text: "x" }, { headers: { "x-case": "html" } }));
  // A route whose upstream is down: Portico's own answer, as a gRPC-Web status.
  out.refused = await failing(() => client.unary({ text: "x" }, { headers: { "x-case": "down" } }));
} else {
  const require = createRequire(import.meta.url);
  globalThis.XMLHttpRequest = require("xhr2");
  const { GrpcWebClientBase, MethodDescriptor, MethodType } = require("grpc-web");
  const client = new GrpcWebClientBase({ format: "text" });
  const method = (name, type) =>
    new MethodDescriptor(`/portico.test.Echo/${name}`, type, Object, Object,
      (req) => toBinary(Msg, create(Msg, req)), (bytes) => fromBinary(Msg, bytes));
  const call = (name, req, md = {}) => new Promise((resolve) => {
    const status = {};
    const stream = client.rpcCall(`${baseUrl}/portico.test.Echo/${name}`, req, md, method(name, MethodType.UNARY),
      (err, res) => resolve(err ? { code: err.code, message: err.message } : { text: res.text, status }));
    stream.on("status", (s) => Object.assign(status, { code: s.code, metadata: s.metadata }));
  });
  out.unary = await call("Unary", { text: "hello text" });
  out.error = await call("Fail", { count: 7, text: "not for you" });
  out.http_error = await call("Unary", { text: "x" }, { "x-case": "html" });
  out.refused = await call("Unary", { text: "x" }, { "x-case": "down" });
  out.server_stream = await new Promise((resolve) => {
    let count = 0, bytes = 0;
    const stream = client.serverStreaming(`${baseUrl}/portico.test.Echo/ServerStream`, { count: 20, size: 3000 }, {},
      method("ServerStream", MethodType.SERVER_STREAMING));
    stream.on("data", (m) => { count += 1; bytes += m.data.length; });
    stream.on("error", (e) => resolve({ count, bytes, code: e.code, message: e.message }));
    stream.on("end", () => resolve({ count, bytes }));
  });
}
console.log(JSON.stringify(out));
