"""Authentication, project isolation and the error envelope, seen through the official SDK."""

import json
import uuid

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_handler import HttpHandler
from huaweicloudsdkmssi.v1 import CreateFlowRequest, FlowMeta, ShowAllFlowsRequest

from conftest import call

APIGW_AUTH = "APIGW.0301"
FORBIDDEN = "MSSI.00020004"


def assert_sdk_error(exc_info, status, code):
    """The SDK raised a 4xx exception with the status, code and a request id."""
    err = exc_info.value
    assert isinstance(err, ClientRequestException)
    assert err.status_code == status, err
    assert err.error_code == code, err
    assert err.error_msg, err
    assert err.request_id, "the SDK copies X-Request-Id into request_id"


def assert_envelope(resp, status, code):
    """A plain-HTTP response carries the MSSI/APIG error envelope and a request id."""
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert body["error_code"] == code, body
    assert isinstance(body["error_msg"], str) and len(body["error_msg"]) >= 2
    assert resp.headers.get("X-Request-Id"), "every response carries X-Request-Id"
    return body


def test_signed_sdk_call_succeeds(client):
    resp = client.show_all_flows(ShowAllFlowsRequest(offset=0, limit=10))
    assert resp.status_code == 200
    raw = json.loads(resp.raw_content)
    # count is a string on the wire: the SDK and the Go SDK model it as one.
    assert isinstance(raw["count"], str), raw
    assert isinstance(raw.get("flow_metas", []), list)
    assert resp.count == raw["count"]


def test_signed_call_api_succeeds(client):
    resp = call(client, "GET", "/v1/{project_id}/flows", query={"offset": 0, "limit": 10})
    assert resp.status_code == 200
    assert isinstance(resp.to_json_object()["count"], str)


def test_tampered_body_is_rejected(server, client):
    marker = f"tamper-{uuid.uuid4().hex[:8]}"

    def flip_a_byte(request, logger):
        # Runs after the SDK signed the request and before it is sent.
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        assert marker.encode() in body
        request.body = body.replace(marker.encode(), marker.upper().encode(), 1)

    tampering = server.client(http_handler=HttpHandler().add_request_handler(flip_a_byte))
    flow = FlowMeta(name=marker, description="signed, then changed", steps=[])
    with pytest.raises(ClientRequestException) as exc:
        tampering.create_flow(CreateFlowRequest(body=flow))
    assert_sdk_error(exc, 401, APIGW_AUTH)

    # Nothing was created under either name.
    listed = client.show_all_flows(ShowAllFlowsRequest(offset=0, limit=1000))
    names = {f.name for f in listed.flow_metas or []}
    assert marker not in names and marker.upper() not in names


def test_stale_sdk_date_is_rejected(client):
    with pytest.raises(ClientRequestException) as exc:
        call(client, "GET", "/v1/{project_id}/flows", headers={"X-Sdk-Date": "20200101T000000Z"})
    assert_sdk_error(exc, 401, APIGW_AUTH)


def test_unknown_access_key_is_rejected(server):
    stranger = server.client(ak="UNKNOWNAK" + uuid.uuid4().hex[:11].upper(), sk="x" * 40)
    with pytest.raises(ClientRequestException) as exc:
        stranger.show_all_flows(ShowAllFlowsRequest(offset=0, limit=10))
    assert_sdk_error(exc, 401, APIGW_AUTH)


def test_wrong_secret_key_is_rejected(server, creds):
    wrong = server.client(sk=creds["sk"][:-1] + ("A" if creds["sk"][-1] != "A" else "B"))
    with pytest.raises(ClientRequestException) as exc:
        wrong.show_all_flows(ShowAllFlowsRequest(offset=0, limit=10))
    assert_sdk_error(exc, 401, APIGW_AUTH)


def test_foreign_project_is_forbidden(server):
    # A valid signature by our key, but for a project that is not the key's.
    foreign = server.client(project_id=uuid.uuid4().hex)
    with pytest.raises(ClientRequestException) as exc:
        foreign.show_all_flows(ShowAllFlowsRequest(offset=0, limit=10))
    assert_sdk_error(exc, 403, FORBIDDEN)


def test_a_second_project_is_a_separate_tenant(server, client):
    # `workbench projects create` makes a tenant; a key for it sees only its own resources.
    team = f"team-{uuid.uuid4().hex[:8]}"
    made = json.loads(server.cli("projects", "create", "--name", team, "--json"))
    key = json.loads(server.cli("keys", "create", "--project", made["project_id"], "--json"))
    assert key["project_id"] == made["project_id"]
    other = server.client(ak=key["ak"], sk=key["sk"], project_id=key["project_id"])
    name = f"only-there-{uuid.uuid4().hex[:8]}"
    call(other, "POST", "/v1/{project_id}/connections",
         body={"connection_name": name, "auth_type": "none", "description": "team"})
    mine = json.loads(call(client, "GET", "/v1/{project_id}/connections",
                           query={"offset": 1, "limit": 100, "name": name}).raw_content)
    theirs = json.loads(call(other, "GET", "/v1/{project_id}/connections",
                             query={"offset": 1, "limit": 100, "name": name}).raw_content)
    assert (mine["total"], theirs["total"]) == (0, 1), (mine, theirs)

    # The new project's key cannot reach the default project, nor the default key the new one.
    crossing = server.client(ak=key["ak"], sk=key["sk"], project_id=server.creds["project_id"])
    with pytest.raises(ClientRequestException) as exc:
        crossing.show_all_flows(ShowAllFlowsRequest(offset=0, limit=10))
    assert_sdk_error(exc, 403, FORBIDDEN)
    with pytest.raises(RuntimeError):
        server.cli("projects", "create", "--name", made["name"])


def test_missing_authentication_is_rejected(server, project_id):
    resp = requests.get(f"{server.base_url}/v1/{project_id}/flows", timeout=10)
    assert_envelope(resp, 401, APIGW_AUTH)


def test_token_works_on_an_mssi_endpoint(server, project_id, token):
    resp = requests.get(
        f"{server.base_url}/v1/{project_id}/flows",
        params={"offset": 0, "limit": 10},
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert isinstance(resp.json()["count"], str)


def test_token_for_another_project_path_is_forbidden(server, token):
    resp = requests.get(
        f"{server.base_url}/v1/{uuid.uuid4().hex}/flows",
        headers={"X-Auth-Token": token},
        timeout=10,
    )
    assert_envelope(resp, 403, FORBIDDEN)


@pytest.mark.parametrize(
    "bad_token",
    ["garbage", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", ""],
    ids=["garbage", "forged-jwt", "empty"],
)
def test_bad_token_is_rejected(server, project_id, bad_token):
    resp = requests.get(
        f"{server.base_url}/v1/{project_id}/flows",
        headers={"X-Auth-Token": bad_token},
        timeout=10,
    )
    assert_envelope(resp, 401, APIGW_AUTH)


def test_wrong_password_gets_no_token(server):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "sdk-tester-nobody",
                        "password": "not-the-password",
                        "domain": {"name": "workbench"},
                    }
                },
            },
            "scope": {"project": {"name": "cn-north-4"}},
        }
    }
    resp = requests.post(f"{server.base_url}/v3/auth/tokens", json=body, timeout=10)
    assert resp.status_code == 401, resp.text
    assert "X-Subject-Token" not in resp.headers


def test_malformed_json_is_a_data_format_error(server, project_id, token):
    resp = requests.post(
        f"{server.base_url}/v1/{project_id}/flows",
        data=b'{"name": "half a flow", "steps": [',
        headers={"X-Auth-Token": token, "Content-Type": "application/json;charset=utf-8"},
        timeout=10,
    )
    assert_envelope(resp, 400, "MSSI.00017001")


def test_malformed_json_signed_with_aksk(client):
    # The SDK sends a str body as-is, so this is a correctly signed, malformed body.
    with pytest.raises(ClientRequestException) as exc:
        call(client, "POST", "/v1/{project_id}/flows", body='{"name": ')
    assert_sdk_error(exc, 400, "MSSI.00017001")


def test_unknown_route_gets_the_envelope(server, project_id, client):
    resp = requests.get(f"{server.base_url}/v1/{project_id}/no-such-thing", timeout=10)
    body = assert_envelope(resp, 404, resp.json().get("error_code"))
    assert body["error_code"].startswith("MSSI."), body
    assert body.get("request_id") == resp.headers["X-Request-Id"]

    with pytest.raises(ClientRequestException) as exc:
        call(client, "GET", "/v1/{project_id}/no-such-thing")
    assert exc.value.status_code == 404
    assert exc.value.error_code.startswith("MSSI.")
    assert exc.value.request_id


@pytest.fixture(scope="module")
def small_server(start_server):
    """A second server whose body limit is 1 KiB."""
    return start_server("small-body", "body_limit_bytes = 1024\n")


@pytest.mark.slow
def test_body_over_the_limit_is_413_with_aksk(small_server):
    sdk = small_server.client()
    flow = FlowMeta(name="big", description="x" * 4096, steps=[])
    with pytest.raises(ClientRequestException) as exc:
        sdk.create_flow(CreateFlowRequest(body=flow))
    assert exc.value.status_code == 413
    assert exc.value.error_code.startswith("MSSI.")
    assert exc.value.request_id


@pytest.mark.slow
def test_body_over_the_limit_is_413_with_token(small_server):
    small_server.create_user("big-body", "Big-body-pass-1")
    token = small_server.token("big-body", "Big-body-pass-1")
    project_id = small_server.creds["project_id"]
    body = json.dumps({"name": "big", "description": "x" * 4096, "steps": []})
    resp = requests.post(
        f"{small_server.base_url}/v1/{project_id}/flows",
        data=body,
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 413, resp.text
    assert resp.json()["error_code"].startswith("MSSI.")
    # The limit is a limit, not a ban: a small body still gets through.
    ok = requests.get(
        f"{small_server.base_url}/v1/{project_id}/flows",
        headers={"X-Auth-Token": token},
        timeout=10,
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.slow
def test_body_over_12_mb_is_413_by_default(server, project_id, token):
    body = b'{"name": "huge", "description": "' + b"x" * (12 * 1024 * 1024 + 1) + b'"}'
    resp = requests.post(
        f"{server.base_url}/v1/{project_id}/flows",
        data=body,
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 413, resp.text[:500]
