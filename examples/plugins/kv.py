#!/usr/bin/env python3
"""plugvisor example plugin in Python (standard library only): a key-value store over HTTP.

PUT /kv/KEY stores the body, GET /kv/KEY returns it, DELETE /kv/KEY removes it; GET /health
answers application/health+json. Config (PLUGVISOR_CONFIG): maxKeys, the most keys it keeps.
PUT /config (its reload hook) takes a new config without a restart.
"""
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

config = json.loads(os.environ.get("PLUGVISOR_CONFIG", "{}"))
max_keys = int(config.get("maxKeys", 1000))
store = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body, content_type="application/json"):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def key(self):
        return self.path[len("/kv/"):] if self.path.startswith("/kv/") and len(self.path) > 4 else None

    def do_GET(self):
        if self.path == "/health":
            with lock:
                full = len(store) >= max_keys
            return self.answer(200, {"status": "warn" if full else "pass", "output": f"{len(store)} of {max_keys} keys"}, "application/health+json")
        key = self.key()
        with lock:
            value = store.get(key) if key else None
        if value is None:
            return self.answer(404, {"error": f"no key {key}"})
        self.answer(200, {"key": key, "value": value})

    def do_PUT(self):
        global config, max_keys
        if self.path == "/config":
            # The reload hook: the new config is the body (and in PLUGVISOR_CONFIG_FILE).
            new = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            with lock:
                config, max_keys = new, int(new.get("maxKeys", 1000))
            print(f"config reloaded: {json.dumps(new)}", flush=True)
            return self.answer(200, {"maxKeys": max_keys})
        key = self.key()
        if not key:
            return self.answer(400, {"error": "PUT /kv/KEY"})
        value = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        with lock:
            if key not in store and len(store) >= max_keys:
                return self.answer(507, {"error": f"full: {max_keys} keys"})
            store[key] = value
        self.answer(200, {"key": key, "value": value})

    def do_DELETE(self):
        key = self.key()
        with lock:
            found = store.pop(key, None) is not None if key else False
        self.answer(200 if found else 404, {"key": key, "deleted": found})

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = True
# SIGTERM (plugvisor's stop signal): stop serving, then exit 0.
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print(f"kv listening on 127.0.0.1:{server.server_address[1]} (maxKeys {max_keys})", flush=True)
server.serve_forever()
server.server_close()
sys.exit(0)
