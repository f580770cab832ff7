"""HTTPS through the pinned connection: the socket goes to the checked address while TLS verifies
the certificate against the host name of the link (a test CA stands in for the public ones)."""

import datetime
import http.server
import io
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from detector.links import addresses, client
from detector.links.errors import ConnectionFailed

OPEN = client.Policy(allow_private=True, stall_seconds=2)


def _name(text):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_ca_and_certificate(tmp_path, host):
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "cert.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp_path / "ca.pem"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hosts.append(self.headers["Host"])
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"video")


@pytest.fixture
def https_server(tmp_path, monkeypatch):
    """An HTTPS server on 127.0.0.1 with a certificate for video.test, signed by a test CA that
    the client's default context trusts for this test only."""
    ca = make_ca_and_certificate(tmp_path, "video.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.hosts = []
    threading.Thread(target=server.serve_forever, daemon=True).start()

    real = ssl.create_default_context

    def trusting_the_test_ca(*args, **kwargs):
        made = real(*args, **kwargs)
        made.load_verify_locations(cafile=str(ca))
        return made

    monkeypatch.setattr(ssl, "create_default_context", trusting_the_test_ca)
    monkeypatch.setattr(addresses, "resolve", lambda host, port: ["127.0.0.1"])
    yield server
    server.shutdown()
    server.server_close()


def test_https_connects_to_the_checked_address_and_verifies_the_name(https_server):
    port = https_server.server_address[1]
    out = io.BytesIO()
    client.download(f"https://video.test:{port}/clip.mp4", out, policy=OPEN, max_bytes=100)
    assert out.getvalue() == b"video" and https_server.hosts == [f"video.test:{port}"]


def test_a_certificate_for_another_name_is_refused(https_server):
    port = https_server.server_address[1]
    with pytest.raises(ConnectionFailed) as error:
        client.download(f"https://other.test:{port}/clip.mp4", io.BytesIO(), policy=OPEN, max_bytes=100)
    assert "could not be verified" in error.value.message and https_server.hosts == []


def test_an_ip_literal_is_checked_against_the_certificate_too(https_server):
    port = https_server.server_address[1]
    with pytest.raises(ConnectionFailed):
        client.download(f"https://127.0.0.1:{port}/clip.mp4", io.BytesIO(), policy=OPEN, max_bytes=100)
    assert https_server.hosts == []
