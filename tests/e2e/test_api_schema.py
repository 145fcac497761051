"""Schemathesis against the OpenAPI document of a running ``smssync serve``: no 5xx, every
response matches the schema, and data the schema forbids is refused (``negative_data_rejection``:
``"all": 0`` or ``until=0.5`` must not be coerced).

Run through its command line: its pytest plugin does not load under this pytest. Examples
per operation stay few, with a fixed seed, so the run is bounded and repeatable in CI.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.serverproc import Server

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server with one device, a webhook and an admin key."""
    proc = Server(tmp_path_factory.mktemp("schema"))
    proc.start()
    try:
        key = proc.cli_json("apikey", "create", "--scope", "admin")["key"]
        proc.add_device("p", "--no-secret")
        proc.cli_json("webhook", "add", "https://hooks.example.org/hook")
        yield proc, key
    finally:
        proc.stop()


@pytest.mark.timeout(180)
def test_api_matches_its_schema(api_server: tuple[Server, str], tmp_path: Path) -> None:
    server, key = api_server
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            server.base + "/api/v1/openapi.json",
            "--url",
            server.base + "/api/v1",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance,response_headers_conformance,negative_data_rejection",
            "--max-examples",
            "40",
            "--seed",
            "5",
            "--phases",
            "examples,coverage,fuzzing",
            "--report-dir",
            str(tmp_path),
        ],
        # Its cache folder (.schemathesis/) goes to the scratch folder, not the work tree.
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # A run that tested next to nothing (an unreachable schema, every case filtered) passes
    # too: the count of generated cases says it did its work.
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated is not None and int(generated.group(1)) >= 300, run.stdout[-3000:]


def test_schema_declares_the_bearer_scheme(api_server: tuple[Server, str]) -> None:
    server, _ = api_server
    spec = httpx.get(server.base + "/api/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
