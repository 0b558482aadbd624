"""https attempts: connected to the checked IP, with the certificate verified against the host's name."""
from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.webhooks import guard

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = f"sni ok, host {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_server(tmp_path):
    """An https server on 127.0.0.1 with a self-signed certificate for hooks.test."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.test",
                    "-addext", "subjectAltName=DNS:hooks.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, cert
    server.shutdown()
    server.server_close()


def _post(host: str, port: int) -> guard.Answer:
    target = guard.Target("https", host, port, "/hook", "127.0.0.1")
    return guard.post(target, b"{}", {"Content-Type": "application/json"}, timeout=5, deadline=10, max_bytes=200)


def test_an_untrusted_certificate_is_refused(tls_server):
    port, _ = tls_server
    answer = _post("hooks.test", port)
    assert answer.status_code is None and "certificate verify failed" in answer.error


def test_the_certificate_is_checked_against_the_name_while_the_checked_ip_is_dialled(tls_server, monkeypatch):
    port, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust our self-signed certificate
    answer = _post("hooks.test", port)  # hooks.test resolves nowhere: only the pinned IP is dialled
    assert answer.ok and answer.excerpt == f"sni ok, host hooks.test:{port}"
    wrong = _post("other.test", port)
    assert wrong.status_code is None and "certificate verify failed" in wrong.error
