"""The application model (ABM, A1-A6) through the official SDK's `call_api`.

The API reference's request examples (fixtures/abm_seed.json) are replayed and must give the
reference's responses, except for the URNs the server generates: the reference's URNs in a
request are swapped for entities made beforehand, and the server's URNs in a response are
swapped back before comparing. Every test works in an instance of its own.
"""

import json
import re
import uuid
from pathlib import Path

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from conftest import call

SEED = json.loads((Path(__file__).parent / "fixtures" / "abm_seed.json").read_text())
INSTANCES = "/v3/{project_id}/abm/instances"
BASE = INSTANCES + "/{instance_id}/metadata3"
GENERATED = re.compile(r"^urn:abm:[A-Za-z0-9-]+:[0-9a-f]{30}$")
DATASET = SEED["A6"]["request"]["entity_urn"]


@pytest.fixture
def instance(client):
    """A new instance holding Metamodel3, created through the admin endpoint."""
    instance_id = f"t-{uuid.uuid4().hex[:12]}"
    body = {"instance_id": instance_id, "packages": ["Metamodel3"]}
    resp = call(client, "POST", INSTANCES, body=body)
    assert resp.status_code == 201
    assert resp.to_json_object() == body
    return instance_id


def send(client, instance, method, path, body=None, entity_urn=None, query=None):
    params = {"instance_id": instance}
    if entity_urn is not None:
        params["entity_urn"] = entity_urn
    resp = call(client, method, path, body=body, path_params=params, query=query)
    assert resp.status_code == 200
    return resp.to_json_object()


def add(client, instance, *items):
    """Adds entities given as (type, name); returns their URNs."""
    entities = [
        {"package_id": "Metamodel3", "entity_type": t, "entity_name": n} for t, n in items
    ]
    body = send(client, instance, "POST", BASE + "/entities", {"entities": entities})
    assert body["failure"] == [], body
    return [s["entity_urn"] for s in body["success"]]


def import_dataset(client, instance, urn=DATASET):
    item = {
        "package_id": "Metamodel3",
        "entity_type": "Metamodel3-Dataset",
        "entity_name": "x$wait_classes_global_by_avg_latency",
        "entity_urn": urn,
    }
    path = BASE + "/entities/import"
    body = send(client, instance, "POST", path, {"entities": [item]})
    assert [s["entity_urn"] for s in body["success"]] == [urn], body


def swap(value, mapping):
    """`value` with every string equal to a key of `mapping` replaced by its value."""
    if isinstance(value, dict):
        return {k: swap(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [swap(v, mapping) for v in value]
    if isinstance(value, str):
        return mapping.get(value, value)
    return value


def replay(client, instance, name, mapping=None):
    """Sends seed example `name` with its URNs mapped to ours; returns the response with our
    URNs mapped back to the seed's."""
    mapping = mapping or {}
    example = SEED[name]
    urn = example.get("entity_urn")
    body = send(
        client,
        instance,
        example["method"],
        example["path"],
        body=swap(example.get("request"), mapping),
        entity_urn=mapping.get(urn, urn),
    )
    back = {ours: theirs for theirs, ours in mapping.items()}
    return swap(body, back)


def test_a1_add_entities(client, instance):
    body = send(client, instance, "POST", SEED["A1"]["path"], SEED["A1"]["request"])
    urn = body["success"][0]["entity_urn"]
    assert GENERATED.match(urn) and urn.startswith("urn:abm:Metamodel3-SubjectArea:"), urn
    expected = SEED["A1"]["response"]
    assert swap(body, {urn: expected["success"][0]["entity_urn"]}) == expected

    # The signatures sent with the entity were stored, with version "0".
    stored = send(client, instance, "GET", BASE + "/entities/{entity_urn}", entity_urn=urn)
    assert [s["version"] for s in stored["signatures"]] == ["0", "0"]


def test_a2_update_entity(client, instance):
    (urn,) = add(client, instance, ("Metamodel3-SubjectArea", "主题域01"))
    body = replay(client, instance, "A2", {SEED["A2"]["entity_urn"]: urn})
    assert body == SEED["A2"]["response"]


def test_a3_delete_entity(client, instance):
    (urn,) = add(client, instance, ("Metamodel3-SubjectArea", "to delete"))
    body = replay(client, instance, "A3", {SEED["A3"]["entity_urn"]: urn})
    assert body == SEED["A3"]["response"]

    with pytest.raises(ClientRequestException) as err:
        call(client, "DELETE", BASE + "/entities/{entity_urn}",
             path_params={"instance_id": instance, "entity_urn": urn})
    assert (err.value.status_code, err.value.error_code) == (404, "MSSI.00050021")


def test_a3_composite_urn_in_the_path(client, instance):
    import_dataset(client, instance)
    path = BASE + "/entities/{entity_urn}"
    got = send(client, instance, "GET", path, entity_urn=DATASET)
    assert got["entity_urn"] == DATASET

    body = send(client, instance, "DELETE", path, entity_urn=DATASET)
    assert body == {
        "msg": "",
        "result": {"msg": "", "success": [DATASET], "failure": []},
        "acknowledged": True,
    }
    with pytest.raises(ClientRequestException) as err:
        call(client, "GET", path, path_params={"instance_id": instance, "entity_urn": DATASET})
    assert (err.value.status_code, err.value.error_code) == (404, "MSSI.00050021")


def test_a4_delete_entities(client, instance):
    ours = add(client, instance, ("Metamodel3-SubjectArea", "a"), ("Metamodel3-SubjectArea", "b"))
    mapping = dict(zip(SEED["A4"]["request"]["entity_urns"], ours))
    assert replay(client, instance, "A4", mapping) == SEED["A4"]["response"]


def test_a5_relationships(client, instance):
    report, group = add(
        client, instance, ("Metamodel3-Report", "r"), ("Metamodel3-ReportGroup", "g")
    )
    seed = SEED["A5"]["request"]["relationships"][0]
    mapping = {seed["from_urn"]: report, seed["target_urn"]: group}
    assert replay(client, instance, "A5", mapping) == SEED["A5"]["response"]

    # Both directions read the edge back.
    path = BASE + "/entities/{entity_urn}/relationships"
    incoming = send(client, instance, "GET", path, entity_urn=group, query={"direction": "in"})
    assert [e["from_urn"] for e in incoming] == [report]
    outgoing = send(client, instance, "GET", path, entity_urn=report, query={"direction": "out"})
    assert [e["target_urn"] for e in outgoing] == [group]


def test_a6_signatures_on_a_composite_urn(client, instance):
    import_dataset(client, instance)
    body = send(client, instance, "POST", SEED["A6"]["path"], SEED["A6"]["request"])
    assert body == SEED["A6"]["response"]

    # The same write again changes nothing, so the version stays; a change raises it.
    send(client, instance, "POST", SEED["A6"]["path"], SEED["A6"]["request"])
    path = BASE + "/entities/{entity_urn}"
    assert send(client, instance, "GET", path, entity_urn=DATASET)["signatures"][0]["version"] == "0"
    changed = json.loads(json.dumps(SEED["A6"]["request"]))
    changed["signatures"][0]["signature_attributes"][1]["attribute_value"] = "L2"
    send(client, instance, "POST", SEED["A6"]["path"], changed)
    assert send(client, instance, "GET", path, entity_urn=DATASET)["signatures"][0]["version"] == "1"


def count_entities(client, instance):
    return send(client, instance, "GET", BASE + "/entities", query={"limit": 1})["total"]


def test_batch_over_200_is_refused_whole(client, instance):
    def batch(n):
        items = [
            {"package_id": "Metamodel3", "entity_type": "Metamodel3-SubjectArea",
             "entity_name": f"e{i}"}
            for i in range(n)
        ]
        return {"entities": items}

    with pytest.raises(ClientRequestException) as err:
        call(client, "POST", BASE + "/entities", body=batch(201),
             path_params={"instance_id": instance})
    assert (err.value.status_code, err.value.error_code) == (400, "MSSI.00050018")
    assert count_entities(client, instance) == 0

    body = send(client, instance, "POST", BASE + "/entities", batch(200))
    assert (len(body["success"]), body["failure"]) == (200, [])
    assert count_entities(client, instance) == 200


def test_unknown_instance_is_404(client):
    with pytest.raises(ClientRequestException) as err:
        call(client, "POST", BASE + "/entities", body=SEED["A1"]["request"],
             path_params={"instance_id": "no-such-instance"})
    assert (err.value.status_code, err.value.error_code) == (404, "MSSI.00050021")


def test_default_instance_holds_metamodel3(client):
    resp = call(client, "GET", INSTANCES + "/default/catalog")
    assert [p["package_id"] for p in resp.to_json_object()["packages"]] == ["Metamodel3"]


PACKAGE = """\
package_id: Shop{suffix}
name: 商店
entity_types:
  - type: Shop{suffix}-Order
    attributes:
      - {{code: total, name: 总额, name_en: Total}}
"""


def test_cli_loads_a_package_and_creates_an_instance(server, client, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    package = tmp_path / "shop.yaml"
    package.write_text(PACKAGE.format(suffix=suffix))
    assert f"package Shop{suffix} loaded" in server.cli("packages", "load", str(package))
    instance = f"shop-{suffix}"
    server.cli("instances", "create", "--project", server.creds["project_id"],
               "--instance", instance, "--package", "Metamodel3", "--package", f"Shop{suffix}")

    catalog = call(client, "GET", INSTANCES + "/{instance_id}/catalog",
                   path_params={"instance_id": instance}).to_json_object()
    assert [p["package_id"] for p in catalog["packages"]] == ["Metamodel3", f"Shop{suffix}"]
    item = {"package_id": f"Shop{suffix}", "entity_type": f"Shop{suffix}-Order",
            "entity_name": "o1", "entity_attributes": [
                {"attribute_id": f"Shop{suffix}-Order-total", "attribute_value": 12}]}
    body = send(client, instance, "POST", BASE + "/entities", {"entities": [item]})
    assert body["failure"] == [], body
    got = send(client, instance, "GET", BASE + "/entities/{entity_urn}",
               entity_urn=body["success"][0]["entity_urn"])
    assert got["entity_attributes"][0] == {
        "attribute_id": f"Shop{suffix}-Order-total", "attribute_value": "12",
        "attribute_code": "total", "attribute_name": "总额", "attribute_name_en": "Total",
    }
