"""A real PACS for the tests: Orthanc with its DICOMweb plugin (Debian packages ``orthanc`` and
``orthanc-dicomweb``), started once per test session on a free localhost port, with basic
authentication, a temporary storage folder and a generated configuration, and stopped at the end.
``orthanc_tls`` is the same server behind HTTPS: a TLS-terminating proxy (as hospitals put in front of a
PACS) with a certificate made for it by ``openssl``; Orthanc's own HTTPS is not used, since Debian 12's
build crashes on the first HTTPS request (its civetweb with OpenSSL 3).
Tests that need them skip, saying why, only where they are not installed (``.ci/run`` installs them)."""
from __future__ import annotations

import glob
import json
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from thyroid_studio.engine.pacs.dicomweb import Server

USER, PASSWORD = "radiologist", "pw-7f3c-not-for-logs"
PLUGIN_GLOBS = ("/usr/lib/orthanc/libOrthancDicomWeb.so*", "/usr/share/orthanc/plugins/libOrthancDicomWeb.so*")
START_TIMEOUT_S = 30


@dataclass
class Orthanc:
    """A running Orthanc: its DICOMweb root, REST root, credentials and log file."""

    dicomweb: str
    rest: str
    log: Path
    verify: bool | str = True

    def server(self, **changes) -> Server:
        """The engine's Server for it, with the right credentials unless ``changes`` say otherwise."""
        fields = {"username": USER, "password": PASSWORD, "verify": self.verify, "timeout_s": 10.0, **changes}
        return Server(self.dicomweb, **fields)

    def store(self, *paths: Path) -> list[str]:
        """Upload DICOM files through Orthanc's REST API (not the code under test); their Orthanc IDs."""
        ids = []
        for path in paths:
            answer = requests.post(f"{self.rest}/instances", data=Path(path).read_bytes(), auth=(USER, PASSWORD),
                                   verify=self.verify, timeout=30)
            answer.raise_for_status()
            ids.append(answer.json()["ID"])
        return ids

    def series_of(self, study_uid: str) -> list[dict]:
        """Orthanc's own view of a study's series (REST API), to check what the client stored."""
        found = requests.post(f"{self.rest}/tools/find", auth=(USER, PASSWORD), verify=self.verify, timeout=30,
                              json={"Level": "Series", "Query": {"StudyInstanceUID": study_uid}, "Expand": True})
        found.raise_for_status()
        return found.json()


def _plugin() -> str | None:
    return next((match for pattern in PLUGIN_GLOBS for match in sorted(glob.glob(pattern))), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class TlsProxy:
    """HTTPS on a free localhost port, relayed to a plain HTTP port: one thread per connection."""

    def __init__(self, target_port: int, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):  # a client that does not trust the certificate hangs up here
            client.close()
            return
        with tls, socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
            other = {tls: upstream, upstream: tls}
            while True:
                ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 60)[0]
                if not ready:
                    return
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                        if not data:
                            return
                        other[sock].sendall(data)
                    except (ssl.SSLError, OSError):
                        return

    def close(self) -> None:
        self.listener.close()


def start_orthanc(folder: Path):
    """Start Orthanc in ``folder`` (config, storage, log); (its Popen, Orthanc). Skips when it is not installed."""
    binary, plugin = shutil.which("Orthanc"), _plugin()
    if binary is None or plugin is None:
        pytest.skip("Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb; "
                    ".ci/run does)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "thyroid-studio-tests", "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"), "HttpPort": port, "DicomServerEnabled": False,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [plugin], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "HttpThreadsCount": 4,
        "ConcurrentJobs": 1, "HttpTimeout": 30,
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = folder / "orthanc.log"
    with open(log, "w") as handle:
        process = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=handle, stderr=subprocess.STDOUT)
    orthanc = Orthanc(f"http://127.0.0.1:{port}/dicom-web", f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if requests.get(f"{orthanc.rest}/system", auth=(USER, PASSWORD), timeout=2).ok:
                return process, orthanc
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_orthanc(process)
            pytest.fail(f"Orthanc did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)


def stop_orthanc(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """One Orthanc (HTTP, basic auth) for the whole session."""
    process, server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    stop_orthanc(process)


@pytest.fixture(scope="session")
def orthanc_tls(orthanc, tmp_path_factory):
    """The session's Orthanc behind HTTPS (a self-signed certificate; ``verify`` is its path)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the HTTPS test server")
    cert, key = _certificate(tmp_path_factory.mktemp("tls"))
    proxy = TlsProxy(int(orthanc.rest.rsplit(":", 1)[1]), cert, key)
    yield Orthanc(f"https://127.0.0.1:{proxy.port}/dicom-web", f"https://127.0.0.1:{proxy.port}", orthanc.log,
                  str(cert))
    proxy.close()
