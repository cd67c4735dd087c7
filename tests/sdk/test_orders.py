"""The main job through the official SDK: save the example orders flow, enable it, run it on
real input served by a local HTTP server, and read every step back (issue: flows, runs)."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from huaweicloudsdkmssi.v1.model import (
    CreateFlowRequest,
    FlowMeta,
    SearchFlowByIdRequest,
    ShowAllFlowsRequest,
)

from conftest import REPO, call

ORDERS = [
    {"id": 1, "amount": 50},
    {"id": 2, "amount": 150},
    {"id": 3, "amount": "250"},
    {"id": 4, "amount": 100},
    {"id": 5},
]


class OrderShop:
    """Serves the orders and records what the flow posts back."""

    def __init__(self):
        self.accepted = []
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/orders":
                    self._reply(200, ORDERS)
                else:
                    self._reply(404, {"error": "no such path"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                order = json.loads(self.rfile.read(length) or b"null")
                if self.path == "/accepted":
                    shop.accepted.append(order)
                    self._reply(200, {"ok": True})
                else:
                    self._reply(404, {"error": "no such path"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def wait_for_run(client, flow_id, running_id, timeout=60):
    deadline = time.time() + timeout
    path = "/v2/{project_id}/flows/{flow_id}/running-history/{running_id}"
    params = {"flow_id": flow_id, "running_id": running_id}
    while True:
        detail = call(client, "GET", path, path_params=params).to_json_object()
        if detail["status"] != "running":
            return detail
        assert time.time() < deadline, f"run still running: {detail}"
        time.sleep(0.2)


def test_orders_flow_runs_end_to_end(client):
    shop = OrderShop()
    try:
        text = (REPO / "examples" / "orders-flow.json").read_text()
        definition = json.loads(text.replace("http://127.0.0.1:9999", shop.base))
        name = f"{definition['name']} {uuid.uuid4().hex[:8]}"
        meta = FlowMeta(name=name, description=definition["description"],
                        steps=definition["steps"])
        created = client.create_flow(CreateFlowRequest(body=meta))
        flow_id = created.flow_id
        assert flow_id

        shown = client.search_flow_by_id(SearchFlowByIdRequest(flow_id=flow_id))
        assert shown.name == name
        assert shown.version == "1"
        assert [s["stepId"] for s in shown.steps] == [s["stepId"] for s in definition["steps"]]
        listed = client.show_all_flows(ShowAllFlowsRequest(offset=0, limit=100, name=name))
        assert listed.count == "1"

        flow_params = {"flow_id": flow_id}
        enabled = call(client, "POST", "/v1/{project_id}/flows/{flow_id}/enable",
                       path_params=flow_params).to_json_object()
        assert enabled == {"success": True, "message": None}

        started = call(client, "POST", "/v1/{project_id}/flows/{flow_id}/run",
                       body={"run_mode": "manual", "input": {}},
                       path_params=flow_params).to_json_object()
        assert started["success"] is True
        assert started["flow_name"] == name

        detail = wait_for_run(client, flow_id, started["running_id"])
        assert detail["status"] == "success", detail
        assert sorted(o["id"] for o in shop.accepted) == [2, 3]

        steps = {s["stepId"]: s for s in detail["steps"]}
        assert set(steps) == {s["stepId"] for s in definition["steps"]}
        for step_id, step in steps.items():
            assert step["lastRunningStatus"] == "success", (step_id, step)
            assert isinstance(step["cost"], int) and step["cost"] >= 0
        assert steps["accept"]["executions"] == 2
        assert steps["summary"]["output"]["fetched"] == [1, 2, 3, 4, 5]

        runs = call(client, "GET", "/v2/{project_id}/flows/{flow_id}/running-history",
                    query=[("limit", 10), ("offset", 1)],
                    path_params=flow_params).to_json_object()
        assert runs["count"] == 1
        assert runs["histories"][0]["id"] == started["running_id"]
        assert runs["histories"][0]["status"] == "success"
    finally:
        shop.close()
