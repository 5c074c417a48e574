"""ServerService and ServerGroupService: the rules, without the web pages."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ezpyr.access.models import AccessRule
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.servers.services import (
    NO_GROUP,
    InvalidServer,
    ServerGroupService,
    ServerInput,
    ServerLookup,
    ServerService,
    check_host,
    check_port,
    check_remote_user,
)
from ezpyr.validation import Invalid
from tests.factories import make_rule, make_user_group
from tests.servers.conftest import make_server, make_server_group


@pytest.mark.parametrize("host", [
    "web1", "web1.example.com", "WEB-1.Example.COM", "a" * 63 + ".example.net", "10.0.0.1",
    "192.168.1.254", "::1", "2001:db8::42", "::ffff:192.0.2.1", "xn--bcher-kva.example",
])
def test_good_hosts(host):
    assert check_host(f"  {host} ") == host


@pytest.mark.parametrize("host", [
    "a b", "x;rm -rf /", "web1 && reboot", "$(id)", "`id`", "web|x", "-oProxyCommand=x",
    "web1.", ".web1", "web..one", "-web.example.com", "web-.example.com", "under_score.net",
    "a" * 64 + ".example.net", "1.2.3", "256.1.1.1", "01.2.3.4", "1.2.3.4.5", "host.123",
    "fe80::1%eth0", "[::1]", "::g", "web1\nx", "web1\x00", "root@web1", "web1:22", "x" * 300, "ünïcode.net",
])
def test_bad_hosts(host):
    with pytest.raises(Invalid) as info:
        check_host(host)
    assert info.value.field == "host"


@pytest.mark.parametrize("port, expected", [("22", 22), (" 2222 ", 2222), (1, 1), ("65535", 65535)])
def test_good_ports(port, expected):
    assert check_port(port) == expected


@pytest.mark.parametrize("port", ["0", 0, "70000", 65536, "abc", "", None, "-1", "22.0", "٢٢", True, "1e3"])
def test_bad_ports(port):
    with pytest.raises(Invalid, match="Port must be a number from 1 to 65535"):
        check_port(port)


@pytest.mark.parametrize("user", ["root", "deploy", "_svc", "a-b_c9", "x" * 32])
def test_good_remote_users(user):
    assert check_remote_user(user) == user


@pytest.mark.parametrize("user", ["", "Root", "9lives", "-x", "a b", "a;b", "x" * 33, "dé"])
def test_bad_remote_users(user):
    with pytest.raises(Invalid) as info:
        check_remote_user(user)
    assert info.value.field == "remote_user"


def test_create_with_every_field(dbsession, secret_box):
    group = make_server_group(dbsession, "db")
    server = ServerService(dbsession, secret_box).create(ServerInput(
        name="db-1.prod", host="10.1.2.3", port="2222", remote_user="deploy",
        auth_method="key", group_id=group.id, description="primary database",
    ))
    dbsession.commit()
    dbsession.expire_all()
    stored = dbsession.get(Server, server.id)
    assert (stored.name, stored.host, stored.port, stored.remote_user, stored.auth_method,
            stored.group.name, stored.description, stored.password_encrypted) == (
        "db-1.prod", "10.1.2.3", 2222, "deploy", "key", "db", "primary database", None)


def test_every_error_is_reported_at_once(dbsession, secret_box):
    with pytest.raises(InvalidServer) as info:
        ServerService(dbsession, secret_box).create(ServerInput(
            name="bad name", host="a b", port="0", remote_user="Root", auth_method="telnet",
            group_id="gone", description="x" * 2001,
        ))
    fields = [e.field for e in info.value.errors]
    assert fields == ["name", "host", "port", "remote_user", "auth_method", "group_id", "description"]
    assert dbsession.query(Server).count() == 0


def test_duplicate_name_is_refused_case_insensitively(dbsession, secret_box):
    make_server(dbsession, secret_box, "web1")
    service = ServerService(dbsession, secret_box)
    for name in ("web1", "WEB1"):
        with pytest.raises(InvalidServer) as info:
            service.create(ServerInput(name=name, host="h.example.net"))
        assert info.value.field == "name" and "already exists" in info.value.message


def test_by_name_is_exact_and_the_lookup_finds_any_case(dbsession, secret_box):
    server = make_server(dbsession, secret_box, "Web1")
    service = ServerService(dbsession, secret_box)
    assert service.by_name("Web1") is server
    assert service.by_name("WEB1") is None
    assert ServerLookup(dbsession).name_owner("wEb1") == server.id


def test_on_mariadb_the_database_refuses_a_name_in_another_case_and_the_check_seeks_the_index(
        dbsession, secret_box):
    if dbsession.get_bind().dialect.name not in ("mysql", "mariadb"):
        pytest.skip("SQLite compares names by lower-casing both sides")
    make_server(dbsession, secret_box, "web1")
    plan = dbsession.execute(text("EXPLAIN SELECT id FROM servers WHERE name = 'WEB1'")).mappings().all()
    assert [row["key"] for row in plan] == ["uq_servers_name"]
    dbsession.add(Server(name="WEB1", host="h.example.net"))
    with pytest.raises(IntegrityError):
        dbsession.flush()


def test_password_is_stored_only_encrypted(dbsession, secret_box):
    secret = "S3cret pass;word'\""
    server = make_server(dbsession, secret_box, "vault", auth_method="password", password=secret)
    dbsession.expire_all()
    stored = dbsession.get(Server, server.id)
    assert stored.password_encrypted and secret not in stored.password_encrypted
    assert secret_box.decrypt(stored.password_encrypted) == secret
    assert ServerService(dbsession, secret_box).password(stored) == secret


def test_password_auth_needs_a_password_on_create(dbsession, secret_box):
    with pytest.raises(InvalidServer) as info:
        ServerService(dbsession, secret_box).create(
            ServerInput(name="vault", host="vault.example.net", auth_method="password"))
    assert info.value.field == "password"
    assert dbsession.query(Server).count() == 0


def test_key_auth_refuses_a_password(dbsession, secret_box):
    with pytest.raises(InvalidServer) as info:
        ServerService(dbsession, secret_box).create(
            ServerInput(name="web", host="web.example.net", auth_method="key", password="x"))
    assert info.value.field == "password"


def test_update_keeps_replaces_and_forgets_the_password(dbsession, secret_box):
    service = ServerService(dbsession, secret_box)
    server = make_server(dbsession, secret_box, "vault", auth_method="password", password="first")
    data = ServerInput(name="vault", host="vault.example.net", auth_method="password")

    service.update(server, data)  # blank: keep
    assert service.password(server) == "first"

    data.password = "second"
    service.update(server, data)
    assert service.password(server) == "second"

    data.auth_method, data.password = "key", ""
    service.update(server, data)
    dbsession.commit()
    assert server.password_encrypted is None

    # Back to password: there is nothing stored to keep any more.
    data.auth_method = "password"
    with pytest.raises(InvalidServer) as info:
        service.update(server, data)
    assert info.value.field == "password"


def test_update_may_keep_its_own_name(dbsession, secret_box):
    server = make_server(dbsession, secret_box, "web1")
    ServerService(dbsession, secret_box).update(
        server, ServerInput(name="web1", host="other.example.net"))
    assert server.host == "other.example.net"


def test_search_by_text_and_group(dbsession, secret_box):
    web = make_server_group(dbsession, "web")
    make_server(dbsession, secret_box, "alpha", group=web, description="frontend")
    make_server(dbsession, secret_box, "beta", host="10.0.0.7")
    make_server(dbsession, secret_box, "gamma", group=web)
    service = ServerService(dbsession, secret_box)

    def names(*args):
        return [s.name for s in dbsession.scalars(service.search(*args))]

    assert names() == ["alpha", "beta", "gamma"]
    assert names("10.0.0") == ["beta"]
    assert names("front") == ["alpha"]
    assert names("", web.id) == ["alpha", "gamma"]
    assert names("", NO_GROUP) == ["beta"]
    assert names("gam", web.id) == ["gamma"]
    assert names("100%") == []


def test_delete_server_removes_its_access_rules_only(dbsession, secret_box):
    team = make_user_group(dbsession, "ops")
    group = make_server_group(dbsession, "web")
    server = make_server(dbsession, secret_box, "web1", group=group)
    make_rule(dbsession, user_group=team, server=server)
    make_rule(dbsession, user_group=team, server_group=group)
    service = ServerService(dbsession, secret_box)
    assert service.dependants(server) == {"access rules": 1}
    service.delete(server)
    dbsession.commit()
    assert dbsession.query(Server).count() == 0
    assert [r.server_group_id for r in dbsession.query(AccessRule)] == [group.id]


def test_group_rules(dbsession):
    service = ServerGroupService(dbsession)
    group = service.create("  web  ", "front ends")
    assert group.name == "web"
    for bad in ("", "   ", "x" * 101, "two\nlines", "WEB"):
        with pytest.raises(Invalid) as info:
            service.create(bad)
        assert info.value.field == "name"
    service.update(group, "Web", "")  # its own name in another case is fine
    assert group.name == "Web"


def test_delete_group_keeps_servers_and_removes_rules(dbsession, secret_box):
    team = make_user_group(dbsession, "ops")
    group = make_server_group(dbsession, "web")
    other = make_server_group(dbsession, "db")
    s1 = make_server(dbsession, secret_box, "web1", group=group)
    s2 = make_server(dbsession, secret_box, "web2", group=group)
    s3 = make_server(dbsession, secret_box, "db1", group=other)
    make_rule(dbsession, user_group=team, server_group=group)
    make_rule(dbsession, user_group=team, server_group=other)
    service = ServerGroupService(dbsession)
    assert service.dependants(group) == {"servers": 2, "access rules": 1}
    assert service.server_counts([group, other]) == {group.id: 2, other.id: 1}
    assert service.delete(group) == {"servers": 2, "access rules": 1}
    dbsession.commit()
    dbsession.expire_all()
    assert dbsession.get(ServerGroup, group.id) is None
    assert dbsession.get(Server, s1.id).group_id is None
    assert dbsession.get(Server, s2.id).group_id is None
    assert dbsession.get(Server, s3.id).group_id == other.id
    assert [r.server_group_id for r in dbsession.query(AccessRule)] == [other.id]
