"""A bounded property-based run of schemathesis over the server's own /openapi.json.

Every documented operation is called with generated input, authenticated with a token, with
`{project_id}` pinned to the caller's project so that requests get past project isolation.
Fails on any 5xx, an undocumented status code, content type or response shape.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
MAX_EXAMPLES = os.environ.get("WB_SCHEMATHESIS_EXAMPLES", "20")

CONFIG = """\
headers = { "X-Auth-Token" = "${WB_TOKEN}" }
request-timeout = 30
warnings = false

[parameters]
"path.project_id" = "${WB_PROJECT_ID}"
"""


def schemathesis_command():
    here = Path(sys.executable).parent / "schemathesis"
    if here.exists():
        return [str(here)]
    found = shutil.which("schemathesis")
    if found:
        return [found]
    pytest.skip("schemathesis is not installed (see tests/sdk/requirements.txt)")


@pytest.mark.slow
def test_openapi_conformance(server, project_id, token, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    cmd = [
        *schemathesis_command(),
        "--config-file",
        str(config),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        MAX_EXAMPLES,
        "--phases",
        "examples,coverage,fuzzing",
        # One worker: CPython 3.11.7's ast.parse is not thread-safe, and hypothesis calls it
        # while describing strategies ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--seed",
        os.environ.get("WB_SCHEMATHESIS_SEED", "20240101"),
        "--no-color",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = dict(os.environ, WB_TOKEN=token, WB_PROJECT_ID=project_id)
    done = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540
    )
    output = done.stdout + done.stderr
    # The summary is shown by pytest on failure (and with -rA).
    print(output[-20000:])
    assert done.returncode == 0, f"schemathesis exited {done.returncode} (output above)"
    assert "No operations" not in output, output
