"""The API on two real nodes: a token made on the master (with
ezpyr-admin) works on both; a server created through the master's API
reaches the slave; the slave answers a write with 409 and the master's
address, and changes nothing."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from ezpyr.servers.models import Server
from tests.cluster_nodes import make_cluster, wait_until

pytestmark = pytest.mark.slow


def api(node, method, path, token, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{node.port}/api/v1{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_tokens_and_api_writes_replicate_and_the_slave_refuses_writes(tmp_path, backend, tmp_path_factory):
    a, b = make_cluster(tmp_path, backend, tmp_path_factory)
    try:
        a.start()
        b.start()
        made = json.loads(a.run("ezpyr-admin", "--json", "tokens", "add", "inventory", "--owner", "admin",
                                "--read-write").stdout)
        token = made["secret"]
        status, server = api(a, "POST", "/servers", token, {"name": "web1", "host": "10.0.0.5"})
        assert status == 201, server
        wait_until(lambda: b.count(Server) == 1, 30, message="the server to reach the slave")
        wait_until(lambda: api(b, "GET", "/me", token)[0] == 200, 30, message="the token to work on the slave")
        status, listed = api(b, "GET", "/servers", token)
        assert status == 200 and [s["name"] for s in listed["items"]] == ["web1"]
        status, refused = api(b, "POST", "/servers", token, {"name": "web2", "host": "10.0.0.6"})
        assert status == 409 and refused["master"] == a.address, refused
        status, refused = api(b, "DELETE", f"/servers/{server['id']}", token)
        assert status == 409
        assert b.count(Server) == 1 and a.count(Server) == 1
        a.run("ezpyr-admin", "tokens", "revoke", "inventory")
        wait_until(lambda: api(b, "GET", "/me", token)[0] == 401, 30, message="the revocation to reach the slave")
    except BaseException:
        print(a.logs(), b.logs())
        raise
    finally:
        a.close()
        b.close()
