"""Connections (C1-C5), the connector catalog and custom connectors (K1-K5) and templates (F6),
driven through the official SDK; every response must parse into the SDK's models."""

import datetime
import json
import uuid

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmssi.v1 import (
    ApiConfig,
    BaseConnectionInfo,
    ConnectionInfo,
    CreateConnectionInfoRequest,
    CreateCustomConnectorFromOpenapiRequest,
    CreateFlowRequest,
    CreateFlowTemplateFromFlowRequest,
    CustomConnectorInfoV2,
    DeleteConnectionInfoRequest,
    DeleteCustomConnectorRequest,
    FlowMeta,
    ShowAllConnectionsRequest,
    ShowConnectorsRequest,
    ShowCustomConnectorRequest,
    ShowCustomConnectorsRequest,
    ShowSingleConnectionRequest,
    TemplateMessage,
    UpdateConnectionInfoRequest,
)

from conftest import call

SECRET = "sdk-secret-4b1e0c"

PETS = {
    "openapi": "3.0.3",
    "info": {"title": "SDK pets", "version": "1"},
    "servers": [{"url": "http://127.0.0.1:9/api"}],
    "paths": {
        "/pets": {
            "post": {
                "operationId": "addPet",
                "requestBody": {
                    "content": {"application/json": {"schema": {"type": "object"}}}
                },
                "responses": {"201": {"description": "created"}},
            }
        }
    },
}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_code(exc_info, code):
    err = exc_info.value
    assert isinstance(err, ClientRequestException)
    assert err.status_code == 400, err
    assert err.error_code == code, err


def create_connection(client, name):
    body = BaseConnectionInfo(
        connection_name=name,
        auth_type="api_key",
        auth_info={"api_key": SECRET, "name": "X-Key", "in": "header"},
        host_config={"url": "http://127.0.0.1:9"},
        description="from the SDK",
    )
    resp = client.create_connection_info(CreateConnectionInfoRequest(body=body))
    assert (resp.res_code, resp.res_msg) == (200, "success")
    listed = client.show_all_connections(ShowAllConnectionsRequest(offset=1, limit=100, name=name))
    found = json.loads(listed.raw_content)
    assert found["total"] == 1, found
    return found["connections"][0]["id"]


def test_connections_round_trip_with_masked_secrets(client):
    name = unique("conn")
    connect_id = create_connection(client, name)

    shown = client.show_single_connection(ShowSingleConnectionRequest(connect_id=connect_id))
    assert shown.connection_name == name
    assert shown.auth_info["api_key"] == "****"
    assert shown.auth_info["name"] == "X-Key"
    assert isinstance(shown.create_time, datetime.datetime)
    assert shown.is_open == 1
    assert SECRET not in json.dumps(shown.to_dict(), default=str)

    update = ConnectionInfo(connection_name=name, description="changed",
                            auth_type="api_key", auth_info={"api_key": "****"})
    resp = client.update_connection_info(
        UpdateConnectionInfoRequest(connect_id=connect_id, body=update))
    assert resp.res_code == 200
    shown = client.show_single_connection(ShowSingleConnectionRequest(connect_id=connect_id))
    assert shown.description == "changed"

    with pytest.raises(ClientRequestException) as exc:
        create_connection(client, name)
    assert_code(exc, "MSSI.00015002")

    resp = client.delete_connection_info(DeleteConnectionInfoRequest(connect_id=connect_id))
    assert resp.res_msg == "success"
    with pytest.raises(ClientRequestException) as exc:
        client.show_single_connection(ShowSingleConnectionRequest(connect_id=connect_id))
    assert_code(exc, "MSSI.00015001")


def test_custom_connectors_from_openapi(client):
    name = unique("pets")
    body = CustomConnectorInfoV2(api_config=ApiConfig(name=name), swagger=PETS)
    created = client.create_custom_connector_from_openapi(
        CreateCustomConnectorFromOpenapiRequest(body=body))
    assert created.name == name
    assert created.version == "1"
    assert isinstance(created.created_time, datetime.datetime)
    connector_id = created.id

    catalog = client.show_connectors(ShowConnectorsRequest(offset=0, limit=100))
    ids = [c.id for c in catalog.connectors]
    assert "HTTP" in ids and connector_id in ids
    assert catalog.count >= len(catalog.connectors)
    http = next(c for c in catalog.connectors if c.id == "HTTP")
    assert http.status == "onboard"
    assert http.actions[0].operation_id == "request"

    own = client.show_connectors(ShowConnectorsRequest(offset=0, limit=100, scope="custom"))
    mine = next(c for c in own.connectors if c.id == connector_id)
    assert [a.operation_id for a in mine.actions] == ["addPet"]
    assert mine.status == "dev"

    resp = client.show_custom_connector(ShowCustomConnectorRequest(connector_id=connector_id))
    assert resp.res_code == 200
    listed = client.show_custom_connectors(
        ShowCustomConnectorsRequest(offset=0, limit=10, name=name))
    assert listed.count == 1
    info = listed.connector_infos[0]
    assert info.id == connector_id
    assert isinstance(info.swagger, str) and "addPet" in info.swagger
    assert isinstance(info.created_time, datetime.datetime)

    bad = CustomConnectorInfoV2(api_config=ApiConfig(name="bad"), swagger={"info": {}})
    with pytest.raises(ClientRequestException) as exc:
        client.create_custom_connector_from_openapi(
            CreateCustomConnectorFromOpenapiRequest(body=bad))
    assert_code(exc, "MSSI.00017008")
    with pytest.raises(ClientRequestException) as exc:
        client.delete_custom_connector(DeleteCustomConnectorRequest(connector_id="HTTP"))
    assert_code(exc, "MSSI.00010004")

    resp = client.delete_custom_connector(DeleteCustomConnectorRequest(connector_id=connector_id))
    assert resp.res_msg == "success"
    with pytest.raises(ClientRequestException) as exc:
        client.show_custom_connector(ShowCustomConnectorRequest(connector_id=connector_id))
    assert_code(exc, "MSSI.00010001")


def test_templates_from_flows(client):
    steps = [
        {"stepId": "trigger", "name": "manual", "transmit": ["t"],
         "call": {"connectorRef": "ManualTrigger", "connectorVersion": "1",
                  "triggerRef": {"refId": "manual", "type": "instant", "input": {}}}},
        {"stepId": "t", "name": "t", "transmit": [],
         "call": {"connectorRef": "DataTransform", "connectorVersion": "1",
                  "actionRef": {"refId": "transform", "input": {"value": 1}}}},
    ]
    flow = client.create_flow(CreateFlowRequest(body=FlowMeta(name=unique("tpl"), steps=steps)))
    message = TemplateMessage(template_name=unique("template"), template_label="demo")
    made = client.create_flow_template_from_flow(
        CreateFlowTemplateFromFlowRequest(flow_id=flow.flow_id, body=message))
    assert made.flow_id

    listed = call(client, "GET", "/v1/{project_id}/templates", query={"limit": 100})
    names = [t["template_name"] for t in listed.to_json_object()["templates"]]
    assert message.template_name in names
    copy = call(client, "POST", "/v1/{project_id}/templates/{template_id}/flows",
                body={"name": unique("copy")}, path_params={"template_id": made.flow_id})
    assert copy.to_json_object()["flow_id"]

    with pytest.raises(ClientRequestException) as exc:
        client.create_flow_template_from_flow(CreateFlowTemplateFromFlowRequest(
            flow_id=str(uuid.uuid4()), body=message))
    assert_code(exc, "MSSI.00011001")
    with pytest.raises(ClientRequestException) as exc:
        call(client, "POST", "/v1/{project_id}/templates/{template_id}/flows",
             body={"name": "x"}, path_params={"template_id": str(uuid.uuid4())})
    assert_code(exc, "MSSI.00012001")
