"""Credentials of the local control plane: an admin token, service-account keys, a kubeconfig.

The API server's self-signed serving certificate (written into its ``--cert-dir``) covers
127.0.0.1 and serves as the kubeconfig's certificate authority, so TLS is verified.
"""

from __future__ import annotations

import pathlib
import secrets
import subprocess

import yaml


def write_token_file(path: pathlib.Path) -> str:
    token = secrets.token_hex(16)
    path.write_text(f"{token},admin,admin,system:masters\n")
    path.chmod(0o600)
    return token


def write_service_account_keys(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    key, pub = directory / "sa.key", directory / "sa.pub"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
        check=True,
        capture_output=True,
    )
    return key, pub


def write_kubeconfig(path: pathlib.Path, *, server: str, ca_file: pathlib.Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
