"""The webhook's HTTPS server on 127.0.0.1, with certificates made by openssl.

Covers: ``POST /validate`` answers an AdmissionReview (denied with the field path, allowed) and
ignores the ``?timeout=`` the API server appends; a body that is not a review is a 400, an
unknown path a 404, ``/healthz`` is ok; a rotated certificate is served from the next connection
(a client trusting only the old one is refused) without a restart; a half-written rotation (key
and certificate not matching) keeps the old pair in use; `stop` leaves no thread behind.
"""

from __future__ import annotations

import http.client
import json
import pathlib
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from controller import webhook

DRIVER = "gpu.dra.dev"


def make_pair(directory: pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def mounted(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """tls.crt and tls.key where the Secret is mounted."""
    cert, key = make_pair(tmp_path / "first", "first")
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "tls.crt").write_bytes(cert.read_bytes())
    (mount / "tls.key").write_bytes(key.read_bytes())
    return mount / "tls.crt", mount / "tls.key"


@pytest.fixture
def server(mounted: tuple[pathlib.Path, pathlib.Path]) -> Iterator[webhook.Webhook]:
    server = webhook.Webhook(
        address="127.0.0.1", port=0, certificates=webhook.Certificates(*mounted), driver=DRIVER
    )
    server.start()
    yield server
    server.stop()


def call(
    server: webhook.Webhook,
    ca: pathlib.Path,
    method: str,
    path: str,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=5)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def review(strategy: str) -> bytes:
    parameters = {
        "apiVersion": "gpu.dra.dev/v1alpha1",
        "kind": "GpuConfig",
        "sharing": {"strategy": strategy},
    }
    obj: dict[str, Any] = {
        "spec": {"devices": {"config": [{"opaque": {"driver": DRIVER, "parameters": parameters}}]}}
    }
    request = {
        "uid": "abc",
        "resource": {"group": "resource.k8s.io", "version": "v1", "resource": "resourceclaims"},
        "operation": "CREATE",
        "object": obj,
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    return json.dumps(body).encode()


def test_validate_answers_reviews(
    server: webhook.Webhook, mounted: tuple[pathlib.Path, pathlib.Path]
) -> None:
    ca = mounted[0]
    status, payload = call(server, ca, "POST", "/validate?timeout=5s", review("Bogus"))
    assert status == 200
    response = json.loads(payload)["response"]
    assert response["uid"] == "abc"
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        "invalid gpu.dra.dev config: spec.devices.config[0].opaque.parameters.sharing.strategy: "
    )
    status, payload = call(server, ca, "POST", "/validate", review("TimeSlicing"))
    assert json.loads(payload)["response"] == {"uid": "abc", "allowed": True}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/validate", b"not json", 400),
        ("POST", "/validate", b"[1, 2]", 400),
        ("POST", "/validate", b'{"request": "x"}', 400),
        ("POST", "/mutate", b"{}", 404),
        ("GET", "/healthz", None, 200),
        ("GET", "/other", None, 404),
    ],
    ids=["not-json", "not-an-object", "no-request", "unknown-path", "healthz", "unknown-get"],
)
def test_other_requests(
    server: webhook.Webhook,
    mounted: tuple[pathlib.Path, pathlib.Path],
    method: str,
    path: str,
    body: bytes | None,
    status: int,
) -> None:
    assert call(server, mounted[0], method, path, body)[0] == status


def test_rotated_certificate_is_served_without_restart(
    server: webhook.Webhook, mounted: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    cert, key = mounted
    old = tmp_path / "old-ca.crt"
    old.write_bytes(cert.read_bytes())
    assert call(server, old, "GET", "/healthz")[0] == 200

    new_cert, new_key = make_pair(tmp_path / "second", "second")
    key.write_bytes(new_key.read_bytes())
    cert.write_bytes(new_cert.read_bytes())
    assert call(server, new_cert, "GET", "/healthz")[0] == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        call(server, old, "GET", "/healthz")


def test_half_written_rotation_keeps_the_old_pair(
    server: webhook.Webhook, mounted: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    cert, _ = mounted
    old = tmp_path / "old-ca.crt"
    old.write_bytes(cert.read_bytes())
    new_cert, _ = make_pair(tmp_path / "second", "second")
    cert.write_bytes(new_cert.read_bytes())  # the new certificate, the old key: no pair
    assert call(server, old, "GET", "/healthz")[0] == 200
