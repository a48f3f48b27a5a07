"""A custom backend as people write them with Python's standard library: HTTP/1.1 keep-alive,
the status line and headers in one write and the body in another, Nagle's algorithm left on.

    python3 keepalive_backend.py --port 8001 [--host 127.0.0.1] [--ready-after-ms 50]

GET /health answers 503 until --ready-after-ms have passed since start, then 200.
POST /v1/chat/completions answers a fixed OpenAI-style completion; with "stream": true, four
server-sent events and [DONE], each chunk of the chunked body in a write of its own, at once.
"""

import argparse
import http.server
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-after-ms", type=int, default=0)
    args = parser.parse_args()
    ready_at = time.monotonic() + args.ready_after_ms / 1000

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()  # first write: status line and headers
            self.wfile.write(body)  # second write: the body

        def do_GET(self) -> None:
            if self.path == "/health":
                ok = time.monotonic() >= ready_at
                self.reply(200 if ok else 503, b'{"status":"ok"}' if ok else b'{"status":"loading"}')
            else:
                self.reply(404, b'{"error":"not found"}')

        def stream(self, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = [
                {"object": "chat.completion.chunk", "model": model,
                 "choices": [{"index": 0, "delta": {"content": f"p{i}"}, "finish_reason": None}]}
                for i in range(4)
            ]
            for text in [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]:
                data = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            if request.get("stream"):
                self.stream(request.get("model", "keepalive"))
                return
            body = {
                "id": "chatcmpl-keepalive",
                "object": "chat.completion",
                "model": request.get("model", "keepalive"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            }
            self.reply(200, json.dumps(body).encode())

        def log_message(self, *_args) -> None:
            pass

    http.server.ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
