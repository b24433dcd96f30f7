"""A stand-in OTLP/HTTP collector: answers 200 to every POST and appends what it was sent to a file.

  python3 bench/otlp_sink.py PORT OUT.bin   then run a function with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT

Each request is written as a line `POST <path> <content-type> <bytes>` and then its body, so
`grep -a -c DynamoDB.PutItem OUT.bin` counts the spans of an operation (docs/observability.md,
"AWS calls as spans"). Standard library only.
"""

import http.server
import sys


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    out = open(path, "ab")

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            out.write(f"POST {self.path} {self.headers.get('Content-Type')} {len(body)}\n".encode() + body + b"\n")
            out.flush()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()


if __name__ == "__main__":
    main()
