"""Fixtures that run a real Workbench server and drive it with the official MSSI Python SDK.

The session starts one `workbench serve` on a free loopback port with a throw-away data
directory, and every test shares it. Tests that need a differently configured server use the
`start_server` factory. `call()` reaches endpoints the SDK has no method for.

Environment knobs:
  WORKBENCH_BIN        the binary to test (default: <repo>/target/debug/workbench)
  WORKBENCH_KEEP_DATA  set to 1 to keep the temporary data directories for inspection
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The SDK core writes ~/.huaweicloud/application_id when it is imported, so HOME must point at
# a scratch directory before the first SDK import below.
_SCRATCH = Path(tempfile.mkdtemp(prefix="wb-sdk-"))
(_SCRATCH / "home").mkdir()
os.environ["HOME"] = str(_SCRATCH / "home")

import json  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402
from huaweicloudsdkcore.sdk_response import SdkResponse  # noqa: E402
from huaweicloudsdkmssi.v1 import MssiClient  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("WORKBENCH_BIN", REPO / "target" / "debug" / "workbench"))
DEFAULT_DOMAIN = "workbench"
READY_TIMEOUT = 90
STOP_TIMEOUT = 20


class Generic(SdkResponse):
    """Response type for endpoints the SDK does not model.

    The SDK fills only `status_code` and the raw body; read it with `.to_json_object()`.
    """

    openapi_types = {}
    attribute_map = {}


def call(client, method, path, body=None, query=None, headers=None, path_params=None):
    """Sends a signed request through `client.call_api` and returns a `Generic` response.

    `path` may contain `{project_id}`, which the SDK fills from the credentials, and other
    `{name}` placeholders filled (and percent-encoded, as the SDK does) from `path_params`.
    `query` is a dict or a list of (key, value) pairs. Errors raise the SDK's exceptions.
    """
    if isinstance(query, dict):
        query = list(query.items())
    header_params = {"Content-Type": "application/json"}
    header_params.update(headers or {})
    return client.call_api(
        resource_path=path,
        method=method,
        path_params=path_params or {},
        query_params=query or [],
        header_params=header_params,
        body=body,
        response_type=Generic,
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, data_dir, config=None, timeout=120):
    """Runs a `workbench` subcommand against a data directory and returns its stdout."""
    cmd = [str(BIN)]
    if config:
        cmd += ["--config", str(config)]
    cmd += ["--data-dir", str(data_dir), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


class Server:
    """One `workbench serve` process with its own data directory."""

    def __init__(self, root, name="main", config_text=None):
        self.root = Path(root) / name
        self.root.mkdir(parents=True)
        self.data_dir = self.root / "data"
        self.log_path = self.root / "server.log"
        self.config = None
        if config_text is not None:
            self.config = self.root / "workbench.toml"
            self.config.write_text(config_text)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self._log = None
        self.creds = None

    def start(self):
        if not BIN.is_file():
            pytest.exit(f"{BIN} does not exist: run `cargo build --bin workbench` first", 2)
        cmd = [str(BIN)]
        if self.config:
            cmd += ["--config", str(self.config)]
        cmd += ["serve", "--bind", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)]
        self._log = open(self.log_path, "wb")
        # A session of its own, so that a server that will not stop can be killed with its
        # PostgreSQL children and nothing else.
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"workbench exited {self.proc.returncode}\n{self.log_tail()}")
            try:
                if requests.get(self.base_url + "/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"workbench not ready in {READY_TIMEOUT}s\n{self.log_tail()}")
            time.sleep(0.2)
        self.creds = self.new_key()
        return self

    def cli(self, *args):
        return run_cli(*args, data_dir=self.data_dir, config=self.config)

    def new_key(self):
        """A fresh AK/SK for the default project: {"ak", "sk", "project_id"}."""
        return json.loads(self.cli("keys", "create", "--json"))

    def create_user(self, name, password, *actions):
        args = ["users", "create", "--name", name, "--password", password]
        for action in actions:
            args += ["--action", action]
        self.cli(*args)

    def token(self, user, password, project_id=None):
        """Logs in at POST /v3/auth/tokens and returns the X-Subject-Token."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": user,
                            "password": password,
                            "domain": {"name": DEFAULT_DOMAIN},
                        }
                    },
                },
                "scope": {"project": {"id": project_id or self.creds["project_id"]}},
            }
        }
        resp = requests.post(
            self.base_url + "/v3/auth/tokens",
            json=body,
            headers={"Content-Type": "application/json;charset=utf8"},
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"]

    def client(self, ak=None, sk=None, project_id=None, http_handler=None):
        """An MssiClient for this server, signing with the given (default: own) key."""
        creds = BasicCredentials(
            ak or self.creds["ak"],
            sk or self.creds["sk"],
            project_id or self.creds["project_id"],
        )
        config = HttpConfig.get_default_config()
        config.timeout = (10, 60)
        builder = (
            MssiClient.new_builder()
            .with_credentials(creds)
            .with_endpoint(self.base_url)
            .with_http_config(config)
        )
        if http_handler is not None:
            builder = builder.with_http_handler(http_handler)
        return builder.build()

    def log_tail(self, lines=40):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        """SIGTERM, then the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        if self._log:
            self._log.close()
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def scratch():
    yield _SCRATCH
    if os.environ.get("WORKBENCH_KEEP_DATA") != "1":
        shutil.rmtree(_SCRATCH, ignore_errors=True)
    else:
        print(f"\nkept test data in {_SCRATCH}", file=sys.stderr)


@pytest.fixture(scope="session")
def start_server(scratch):
    """Factory: start_server(name, config_text=None) -> a started Server, stopped at the end.

    Every server must exit 0 within 20 s of SIGTERM.
    """
    started = []

    def start(name, config_text=None):
        server = Server(scratch, name, config_text)
        try:
            server.start()
        except BaseException:
            server.kill()
            raise
        started.append(server)
        return server

    yield start
    failures = []
    for server in started:
        code = server.stop()
        if code != 0:
            failures.append(
                f"{server.root.name}: exit {code} after SIGTERM "
                f"(None = still running after {STOP_TIMEOUT}s)\n{server.log_tail()}"
            )
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="session")
def server(start_server):
    """The shared server."""
    return start_server("main")


@pytest.fixture(scope="session")
def creds(server):
    """{"ak", "sk", "project_id"} of a key made with `workbench keys create --json`."""
    return server.creds


@pytest.fixture(scope="session")
def project_id(creds):
    return creds["project_id"]


@pytest.fixture(scope="session")
def client(server):
    """An MssiClient signing with AK/SK, pointed at the shared server."""
    return server.client()


@pytest.fixture(scope="session")
def token(server):
    """An IAM token of a user made with `workbench users create` (an admin of the project)."""
    server.create_user("sdk-tester", "Tester-pass-1")
    return server.token("sdk-tester", "Tester-pass-1")


@pytest.fixture(scope="session")
def token_session(server, token):
    """A `requests.Session` that sends the token (use it with `server.base_url + path`)."""
    session = requests.Session()
    session.headers["X-Auth-Token"] = token
    session.headers["Content-Type"] = "application/json"
    yield session
    session.close()
