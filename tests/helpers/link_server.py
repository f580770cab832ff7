"""A local HTTP server for the link tests: loopback only, routes set by each test, every request
recorded. Tests never reach the internet; "remote" sites are served from here."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server.owner
        server.requests.append((self.path, dict(self.headers.items())))
        route = server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        route(self)

    do_HEAD = do_GET


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that stops reading mid-body (as the limits make it) is expected here


class LinkServer:
    def __init__(self):
        self.routes, self.requests = {}, []
        self.release = threading.Event()  # lets stalled handlers finish at teardown
        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path, host="127.0.0.1"):
        return f"http://{host}:{self.port}{path}"

    def close(self):
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def paths(self):
        return [path for path, _ in self.requests]

    # Routes -------------------------------------------------------------------------------

    def file(self, path, data, content_type="video/mp4", *, length=None, close_delimited=False):
        """`data` at `path`. `length` declares another Content-Length (a lie); `close_delimited`
        sends none and ends the body by closing the connection."""

        def route(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            if close_delimited:
                handler.send_header("Connection", "close")
                handler.close_connection = True
            else:
                handler.send_header("Content-Length", str(len(data) if length is None else length))
            handler.end_headers()
            try:
                handler.wfile.write(data)
            except OSError:
                pass  # the client stopped reading, as it should past a limit

        self.routes[path] = route

    def page(self, path, html):
        self.file(path, html.encode(), "text/html; charset=utf-8")

    def redirect(self, path, location, status=302):
        def route(handler):
            handler.send_response(status)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = route

    def status(self, path, status):
        def route(handler):
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = route

    def stalling(self, path, data, content_type="video/mp4", *, after=1024):
        """Declares all of `data`, sends `after` bytes, then goes silent (until teardown)."""

        def route(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[:after])
            handler.wfile.flush()
            self.release.wait(30)
            handler.close_connection = True

        self.routes[path] = route

    def dripping(self, path, data, content_type="video/mp4", *, every=0.1, size=16):
        """Sends `size` bytes every `every` seconds: never stalled, only slow."""

        def route(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            try:
                for start in range(0, len(data), size):
                    if self.release.is_set():
                        break
                    handler.wfile.write(data[start : start + size])
                    handler.wfile.flush()
                    time.sleep(every)
            except OSError:
                pass
            handler.close_connection = True

        self.routes[path] = route
