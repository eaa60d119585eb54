"""Push an OCI image archive to a registry by the distribution API (HTTP, httpx).

Blobs first (each skipped when the registry has it: a second push sends nothing but
the manifest check), the manifest last, so a pull never sees a manifest whose blobs are
missing. Safe to repeat and to interrupt: an upload cut halfway is started again.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from kubeglobe.registry.manifests import repository_of

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CHUNK = 1 << 20


class PushError(RuntimeError):
    pass


@dataclass(frozen=True)
class Pushed:
    image: str
    digest: str
    blobs_sent: int  # 0: the registry had every blob already
    bytes_sent: int


def _member(tar: tarfile.TarFile, name: str) -> tuple[IO[bytes], int]:
    info = tar.getmember(name)
    f = tar.extractfile(info)
    if f is None:
        raise PushError(f"{name} in {tar.name!s} is not a file")
    return f, info.size


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    while block := f.read(CHUNK):
        yield block


def _check(response: httpx.Response, what: str, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise PushError(f"{what}: the registry answered {response.status_code} "
                        f"{response.text[:300]!r}")
    return response


def push_archive(archive: Path, *, registry: str, client: httpx.Client) -> Pushed:
    """Push the image of `archive` (an OCI layout tar, `io.containerd.image.name`
    annotated) to `registry` (its base URL, for example http://10.250.0.11:5000)."""
    with tarfile.open(archive) as tar:
        index_file, _ = _member(tar, "index.json")
        entry = json.load(index_file)["manifests"][0]
        image = entry["annotations"]["io.containerd.image.name"]
        repository, tag = repository_of(image)
        digest: str = entry["digest"]
        manifest_file, _ = _member(tar, f"blobs/sha256/{digest[7:]}")
        manifest_bytes = manifest_file.read()
        base = f"{registry}/v2/{repository}"
        have = client.head(f"{base}/manifests/{tag}", headers={"Accept": MANIFEST_TYPE})
        if have.status_code == 200 and have.headers.get("docker-content-digest") == digest:
            return Pushed(image=image, digest=digest, blobs_sent=0, bytes_sent=0)
        manifest = json.loads(manifest_bytes)
        sent = size_sent = 0
        for blob in (manifest["config"], *manifest["layers"]):
            blob_digest = blob["digest"]
            if client.head(f"{base}/blobs/{blob_digest}").status_code == 200:
                continue
            started = _check(client.post(f"{base}/blobs/uploads/"),
                             f"starting the upload of {blob_digest}", 202)
            location = httpx.URL(registry).join(started.headers["location"])
            data, size = _member(tar, f"blobs/sha256/{blob_digest[7:]}")
            _check(client.put(location.copy_merge_params({"digest": blob_digest}),
                              content=_chunks(data),
                              headers={"Content-Length": str(size),
                                       "Content-Type": "application/octet-stream"}),
                   f"uploading {blob_digest} of {image}", 201)
            sent, size_sent = sent + 1, size_sent + size
        _check(client.put(f"{base}/manifests/{tag}", content=manifest_bytes,
                          headers={"Content-Type": MANIFEST_TYPE}),
               f"putting the manifest of {image}", 201)
    return Pushed(image=image, digest=digest, blobs_sent=sent, bytes_sent=size_sent)
