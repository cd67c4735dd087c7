#!/usr/bin/env python3
"""A stand-in order system for examples/orders-flow.json: serves GET /orders on
127.0.0.1:9999 and prints every order the flow POSTs to /accepted. Standard library only."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDERS = [
    {"id": 1, "amount": 50},
    {"id": 2, "amount": 150},
    {"id": 3, "amount": "250"},
    {"id": 4, "amount": 100},
    {"id": 5},
]


class Shop(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/orders":
            self.reply(200, ORDERS)
        else:
            self.reply(404, {"error": "no such path"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/accepted":
            self.reply(404, {"error": "no such path"})
            return
        print("accepted:", raw.decode(errors="replace"), flush=True)
        self.reply(200, {"ok": True})


if __name__ == "__main__":
    print("order shop on http://127.0.0.1:9999 (GET /orders, POST /accepted)", flush=True)
    ThreadingHTTPServer(("127.0.0.1", 9999), Shop).serve_forever()
