"""A small webhook receiver for Alertmanager: records every notification it receives, one JSON line each.

Run as ``python -m gxlib.monitoring.webhook --host 127.0.0.1 --port 19094 --record notifications.jsonl``.
``POST /alerts`` appends ``{"received_at": <unix time>, "notification": <Alertmanager's payload>}`` to the
record file; ``GET /notifications`` returns the recorded lines as a JSON list; ``GET /healthz`` answers ok.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gxlib.monitoring.alertmanager import WEBHOOK_PATH

MAX_BODY_BYTES = 4 * 1024 * 1024


def read_notifications(record_file: Path) -> list[dict[str, Any]]:
    """The recorded notifications, oldest first (an absent file means none)."""
    if not record_file.is_file():
        return []
    return [json.loads(line) for line in record_file.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_handler(record_file: Path) -> type[BaseHTTPRequestHandler]:
    write_lock = threading.Lock()

    class NotificationRecorder(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: object) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._reply(200, {"status": "ok"})
            elif self.path == "/notifications":
                self._reply(200, read_notifications(record_file))
            else:
                self._reply(404, {"error": f"no such path {self.path}"})

        def do_POST(self) -> None:
            if self.path != WEBHOOK_PATH:
                self._reply(404, {"error": f"POST notifications to {WEBHOOK_PATH}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY_BYTES:
                self._reply(400, {"error": "missing or oversized body"})
                return
            try:
                notification = json.loads(self.rfile.read(length))
            except json.JSONDecodeError as exc:
                self._reply(400, {"error": f"body is not JSON: {exc}"})
                return
            line = json.dumps({"received_at": time.time(), "notification": notification}, sort_keys=True)
            with write_lock, record_file.open("a", encoding="utf-8") as record:
                record.write(line + "\n")
            self._reply(200, {"status": "recorded"})

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.address_string()} {format % args}", flush=True)

    return NotificationRecorder


def serve(host: str, port: int, record_file: Path) -> None:
    record_file.parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host, port), make_handler(record_file))
    print(f"recording Alertmanager notifications posted to http://{host}:{port}{WEBHOOK_PATH} in {record_file}",
          flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True, help="JSON-lines file the notifications go to")
    args = parser.parse_args()
    serve(args.host, args.port, args.record)


if __name__ == "__main__":
    main()
