"""Azurite, Microsoft's Azure Storage emulator, as a child process on 127.0.0.1 for the azure
sink tests, plus the few administrative calls the sink never makes (creating containers).

Azurite comes from the npm registry into .tools/ (``make setup``); ``KUBESTREAM_AZURITE``
overrides the ``azurite-blob`` executable. Missing, the tests fail, never skip: CI must run them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from email.utils import formatdate
from pathlib import Path

import obstore
import pytest
from obstore.store import AzureStore

from kubestream.sinks.objectstore import EMULATOR_ACCOUNT, EMULATOR_ACCOUNT_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_ENV = "KUBESTREAM_AZURITE"
_API_VERSION = "2021-08-06"


def azurite_executable() -> Path:
    """``$KUBESTREAM_AZURITE`` or .tools' ``azurite-blob``; fails the test when missing."""
    override = os.environ.get(AZURITE_ENV)
    path = Path(override) if override else REPO_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    if not path.exists():
        pytest.fail(f"no Azurite: {path} does not exist; run `make setup` (npm installs it into .tools/) "
                    f"or set {AZURITE_ENV}", pytrace=False)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def shared_key_authorization(method: str, path: str, query: dict[str, str], headers: dict[str, str],
                             *, account: str = EMULATOR_ACCOUNT, key: str = EMULATOR_ACCOUNT_KEY) -> str:
    """The ``Authorization`` header of an Azure Storage "Shared Key" request (blob service).

    Only what container creation needs: an empty body (Content-Length signs as empty) sent as
    ``application/octet-stream`` (urllib would otherwise add a form content type, which is signed).
    """
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items())
                                if name.startswith("x-ms-"))
    canonical_resource = f"/{account}{path}" + "".join(f"\n{name}:{value}" for name, value in sorted(query.items()))
    # VERB, Content-Encoding, Content-Language, Content-Length, Content-MD5, Content-Type, Date,
    # If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
    standard = [method, "", "", "", "", headers.get("Content-Type", ""), "", "", "", "", "", ""]
    string_to_sign = "\n".join(standard) + "\n" + canonical_headers + canonical_resource
    digest = hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode()}"


class AzuriteServer:
    """One ``azurite-blob`` process with its data in a temporary folder; ``stop`` ends it."""

    def __init__(self, executable: Path) -> None:
        self.port = _free_port()
        self._data = tempfile.TemporaryDirectory(prefix="azurite-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(
            [str(executable), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--location", self._data.name, "--skipApiVersionCheck", "--loose", "--silent"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.url}/{EMULATOR_ACCOUNT}"
        self._wait_listening(30.0)

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self._log.seek(0)
        output = self._log.read().decode(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"Azurite did not listen on {self.port}: {output}")

    def create_container(self) -> str:
        """A new, empty container (named like the sink tests' buckets)."""
        name = f"ks-{uuid.uuid4().hex[:12]}"
        # Path-style host: the URL path, account included, is what gets signed.
        path, query = f"/{EMULATOR_ACCOUNT}/{name}", {"restype": "container"}
        headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": _API_VERSION,
                   "Content-Type": "application/octet-stream"}
        headers["Authorization"] = shared_key_authorization("PUT", path, query, headers)
        request = urllib.request.Request(f"{self.url}{path}?restype=container", data=b"",
                                         method="PUT", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
        return name

    def store(self, container: str) -> AzureStore:
        """An obstore client for inspecting ``container`` (not the sink's: built here, independently)."""
        return AzureStore(container, account_name=EMULATOR_ACCOUNT, account_key=EMULATOR_ACCOUNT_KEY,
                          endpoint=self.endpoint, client_options={"allow_http": True})

    def keys(self, container: str, prefix: str | None = None) -> list[str]:
        """Every blob name in ``container`` (all pages), sorted."""
        return sorted(str(meta["path"]) for meta in obstore.list(self.store(container), prefix=prefix).collect())

    def read(self, container: str, key: str) -> bytes:
        return bytes(obstore.get(self.store(container), key).bytes())

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        self._data.cleanup()
