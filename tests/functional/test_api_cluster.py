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


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@laptop"


def test_every_kind_made_changed_and_deleted_through_the_api_reaches_the_slave(tmp_path, backend,
                                                                                tmp_path_factory):
    """Each kind of object the API writes (server groups, servers, user
    groups, users, SSH keys, access rules, command rules, settings) is
    created, changed and deleted on the master; the slave follows every
    step, and Verify finds the two nodes alike."""
    from ezpyr.access.models import AccessRule
    from ezpyr.guard.models import CommandRule as GuardRule
    from ezpyr.servers.models import ServerGroup
    from ezpyr.users.models import User, UserGroup, UserKey
    from tests.functional.test_replication_cluster import in_sync

    a, b = make_cluster(tmp_path, backend, tmp_path_factory)
    try:
        a.start()
        b.start()
        token = json.loads(a.run("ezpyr-admin", "--json", "tokens", "add", "sync", "--owner", "admin",
                                 "--read-write").stdout)["secret"]

        def write(method, path, body=None, status=(200, 201)):
            code, answer = api(a, method, path, token, body)
            assert code in status, (method, path, code, answer)
            return answer

        def follows(model, count):
            wait_until(lambda: b.count(model) == count, 30, message=f"{model.__name__} on the slave")

        sg = write("POST", "/server-groups", {"name": "web"})
        server = write("POST", "/servers", {"name": "web1", "host": "10.0.0.5", "group": "web"})
        ug = write("POST", "/user-groups", {"name": "ops"})
        user = write("POST", "/users", {"username": "alice", "group": "ops"})["user"]
        key = write("POST", f"/users/{user['id']}/keys", {"public_key": KEY})
        rule = write("POST", "/access-rules", {"subject": {"user_group": "ops"}, "target": {"server_group": "web"}})
        guard = write("POST", "/guard-rules", {"user_group": "ops", "pattern": "^rm -rf /"})
        for model, count in ((ServerGroup, 1), (Server, 1), (UserGroup, 1), (UserKey, 1), (AccessRule, 1),
                             (GuardRule, 1)):
            follows(model, count)
        wait_until(lambda: b.count(User) == a.count(User), 30, message="the user on the slave")

        write("PATCH", f"/servers/{server['id']}", {"port": 2222})
        write("PATCH", f"/users/{user['id']}", {"full_name": "Alice Example"})
        write("PATCH", f"/guard-rules/{guard['id']}", {"pattern": "^shutdown"})
        write("PATCH", "/settings", {"lockout_threshold": 7})
        write("POST", f"/users/{user['id']}/suspend")
        wait_until(lambda: in_sync(a, b), 60, message="Verify to find the nodes alike after the changes")

        write("DELETE", f"/access-rules/{rule['id']}")
        write("DELETE", f"/guard-rules/{guard['id']}")
        write("DELETE", f"/users/{user['id']}/keys/{key['id']}")
        write("DELETE", f"/users/{user['id']}")
        write("DELETE", f"/user-groups/{ug['id']}")
        write("DELETE", f"/servers/{server['id']}")
        write("DELETE", f"/server-groups/{sg['id']}")
        for model in (AccessRule, GuardRule, UserKey, UserGroup, Server, ServerGroup):
            follows(model, 0)
        wait_until(lambda: in_sync(a, b), 60, message="Verify to find the nodes alike after the deletions")
    except BaseException:
        print(a.logs(), b.logs())
        raise
    finally:
        a.close()
        b.close()
