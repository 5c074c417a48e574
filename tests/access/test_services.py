"""AccessService: rules, and the access they add up to."""
import pytest
from sqlalchemy import event

from ezpyr.access.models import AccessRule
from ezpyr.access.forms import option_value, subject_of, target_of
from ezpyr.access.services import AccessService, Subject, Target
from ezpyr.servers.models import Server
from ezpyr.validation import Invalid
from tests.access.conftest import make_server, make_server_group
from tests.factories import make_rule, make_user, make_user_group


@pytest.fixture
def world(dbsession, passwords):
    """ops (group) has alice; bob is in no group. web (group) holds web1, web2;
    db1 is in group db; lone has no group."""
    ops = make_user_group(dbsession, "ops")
    alice = make_user(dbsession, passwords, "alice", group=ops)
    bob = make_user(dbsession, passwords, "bob")
    web, db = make_server_group(dbsession, "web"), make_server_group(dbsession, "db")
    servers = {
        "web1": make_server(dbsession, "web1", group=web),
        "web2": make_server(dbsession, "web2", group=web),
        "db1": make_server(dbsession, "db1", group=db),
        "lone": make_server(dbsession, "lone"),
    }
    return {"ops": ops, "alice": alice, "bob": bob, "web": web, "db": db, **servers}


def names(reaches):
    return [r.server.name for r in reaches]


def test_user_group_to_server_group(dbsession, world):
    rule = make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    reaches = AccessService(dbsession).effective_access(world["alice"])
    assert names(reaches) == ["web1", "web2"]
    assert reaches[0].rules == [rule]
    assert reaches[0].via == ["user group ops → server group web"]


def test_user_group_to_single_server(dbsession, world):
    make_rule(dbsession, user_group=world["ops"], server=world["lone"])
    reaches = AccessService(dbsession).effective_access(world["alice"])
    assert names(reaches) == ["lone"]
    assert reaches[0].via == ["user group ops → server lone"]


def test_user_to_server_group(dbsession, world):
    make_rule(dbsession, user=world["bob"], server_group=world["db"])
    assert names(AccessService(dbsession).effective_access(world["bob"])) == ["db1"]
    assert AccessService(dbsession).effective_access(world["alice"]) == []


def test_user_to_single_server(dbsession, world):
    make_rule(dbsession, user=world["alice"], server=world["db1"])
    reaches = AccessService(dbsession).effective_access(world["alice"])
    assert names(reaches) == ["db1"]
    assert reaches[0].via == ["user alice → server db1"]


def test_every_rule_that_grants_a_server_is_listed_own_rules_first(dbsession, world):
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    make_rule(dbsession, user=world["alice"], server=world["web1"])
    make_rule(dbsession, user=world["alice"], server_group=world["web"])
    make_rule(dbsession, user_group=world["ops"], server=world["web1"])
    reaches = AccessService(dbsession).effective_access(world["alice"])
    assert names(reaches) == ["web1", "web2"]
    assert reaches[0].via == [
        "user alice → server web1",
        "user alice → server group web",
        "user group ops → server web1",
        "user group ops → server group web",
    ]
    assert reaches[1].via == ["user alice → server group web", "user group ops → server group web"]


def test_a_user_in_no_group_gets_only_their_own_rules(dbsession, world):
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    service = AccessService(dbsession)
    assert service.effective_access(world["bob"]) == []
    make_rule(dbsession, user=world["bob"], server=world["lone"])
    assert names(service.effective_access(world["bob"])) == ["lone"]


def test_a_suspended_user_reaches_nothing(dbsession, world):
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    make_rule(dbsession, user=world["alice"], server=world["lone"])
    world["alice"].suspended = True
    dbsession.commit()
    service = AccessService(dbsession)
    assert service.effective_access(world["alice"]) == []
    assert not service.can_reach(world["alice"], world["lone"])


def test_servers_that_join_a_group_later_are_reached(dbsession, world):
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    make_server(dbsession, "web3", group=world["web"])
    assert names(AccessService(dbsession).effective_access(world["alice"])) == ["web1", "web2", "web3"]


def test_search_keeps_servers_by_name_or_host(dbsession, world):
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    make_rule(dbsession, user_group=world["ops"], server=world["lone"])
    world["lone"].host = "10.0.0.7"
    dbsession.commit()
    service = AccessService(dbsession)
    assert names(service.effective_access(world["alice"], "web2")) == ["web2"]
    assert names(service.effective_access(world["alice"], "10.0.0")) == ["lone"]
    assert service.effective_access(world["alice"], "nothing") == []


def test_effective_access_takes_a_fixed_number_of_queries(dbsession, engine, world):
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    for i in range(20):
        make_server(dbsession, f"extra{i:02d}", group=world["web"])
    make_rule(dbsession, user=world["alice"], server=world["lone"])
    dbsession.expire_all()
    alice = dbsession.get(type(world["alice"]), world["alice"].id)
    statements = []

    def count(*args):
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        reaches = AccessService(dbsession).effective_access(alice)
        [r.via for r in reaches]  # labels need no further queries
        [r.server.group.name if r.server.group else None for r in reaches]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(reaches) == 23
    assert len(statements) == 2, statements


def test_can_reach_by_each_path(dbsession, world):
    service = AccessService(dbsession)
    alice, bob = world["alice"], world["bob"]
    assert not service.can_reach(alice, world["web1"])
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    make_rule(dbsession, user_group=world["ops"], server=world["lone"])
    make_rule(dbsession, user=bob, server_group=world["db"])
    make_rule(dbsession, user=bob, server=world["web2"])
    assert service.can_reach(alice, world["web1"]) and service.can_reach(alice, world["lone"])
    assert not service.can_reach(alice, world["db1"])
    assert service.can_reach(bob, world["db1"]) and service.can_reach(bob, world["web2"])
    assert not service.can_reach(bob, world["web1"]) and not service.can_reach(bob, world["lone"])


class Recorded:
    """The activity a service records, as (action, target, details)."""

    def __init__(self):
        self.entries = []

    def record(self, action, target="", details="", **_who):
        self.entries.append((action, target, details))


def test_create_and_refuse_a_duplicate(dbsession, world):
    activity = Recorded()
    service = AccessService(dbsession, activity)
    rule = service.create(Subject("user_group", world["ops"].id), Target("server_group", world["web"].id))
    dbsession.commit()
    assert (rule.user_group, rule.server_group) == (world["ops"], world["web"])
    assert rule.user_id is None and rule.server_id is None
    with pytest.raises(Invalid) as info:
        service.create(Subject("user_group", world["ops"].id), Target("server_group", world["web"].id))
    assert "already exists" in info.value.message and info.value.field is None
    # same subject, other kind of target: a different rule
    other = service.create(Subject("user", world["alice"].id), Target("server", world["web1"].id))
    assert (other.user, other.server) == (world["alice"], world["web1"])
    dbsession.commit()
    assert dbsession.query(AccessRule).count() == 2
    service.delete(other)
    assert activity.entries == [
        ("access.create", "user group ops → server group web", ""),
        ("access.create", "user alice → server web1", ""),
        ("access.delete", "user alice → server web1", "")]


@pytest.mark.parametrize("subject, target, field", [
    (("user_group", ""), ("server_group", "{web}"), "subject"),
    (("user_group", "{ops}"), ("server", "{web}"), "target"),   # a server group's id is not a server
    (("user_group", "nope"), ("server_group", "{web}"), "subject"),
    (("user", "{ops}"), ("server_group", "{web}"), "subject"),
    (("server", "{ops}"), ("server_group", "{web}"), "subject"),  # not a kind of subject
])
def test_create_refuses_bad_or_stale_rows(dbsession, world, subject, target, field):
    ids = {"ops": world["ops"].id, "web": world["web"].id}
    with pytest.raises(Invalid) as info:
        AccessService(dbsession).create(Subject(subject[0], subject[1].format(**ids)),
                                        Target(target[0], target[1].format(**ids)))
    assert info.value.field == field
    assert dbsession.query(AccessRule).count() == 0


@pytest.mark.parametrize("value, subject", [
    ("ug:abc", Subject("user_group", "abc")), ("u:abc", Subject("user", "abc")),
    ("", None), ("rubbish", None), ("x:abc", None), ("ug:", None), ("sg:abc", None)])
def test_the_panel_reads_its_option_values(value, subject):
    if subject is None:
        with pytest.raises(Invalid) as info:
            subject_of(value)
        assert info.value.field == "subject" and info.value.message == "Choose who gets access from the list."
    else:
        assert subject_of(value) == subject
        assert option_value(subject) == value
    assert target_of("s:abc") == Target("server", "abc") and target_of("sg:abc") == Target("server_group", "abc")
    with pytest.raises(Invalid) as info:
        target_of("u:abc")
    assert info.value.field == "target"


def test_subjects_and_targets_by_name(dbsession, world):
    service = AccessService(dbsession)
    assert service.subject_named(user_group="OPS") == Subject("user_group", world["ops"].id)
    assert service.subject_named(user="alice") == Subject("user", world["alice"].id)
    assert service.target_named(server_group="web") == Target("server_group", world["web"].id)
    assert service.target_named(server="Web1") == Target("server", world["web1"].id)
    for kwargs, message in [({"user_group": "nope"}, "There is no user group named 'nope'."),
                            ({"user": "carol"}, "There is no user named 'carol'."),
                            ({}, "Name a user group or a user (one of them)."),
                            ({"user_group": "ops", "user": "alice"}, "Name a user group or a user (one of them).")]:
        with pytest.raises(Invalid) as info:
            service.subject_named(**kwargs)
        assert (info.value.message, info.value.field) == (message, "subject")
    with pytest.raises(Invalid) as info:
        service.target_named(server="nope")
    assert (info.value.message, info.value.field) == ("There is no server named 'nope'.", "target")


def test_search_pages_from_a_rules_sort_key(dbsession, world):
    for target in ("web", "db"):
        make_rule(dbsession, user_group=world["ops"], server_group=world[target])
    for target in ("web1", "lone", "db1"):
        make_rule(dbsession, user=world["bob"], server=world[target])
    make_rule(dbsession, user=world["alice"], server_group=world["web"])
    service = AccessService(dbsession)
    everything = list(dbsession.scalars(service.search()))
    seen, after = [], None
    while True:
        page = list(dbsession.scalars(service.search(after=after).limit(2)))
        if not page:
            break
        seen += page
        after = service.sort_key(page[-1])
    assert seen == everything and len(seen) == 6
    assert [(r.subject_label, r.target_label) for r in seen][:3] == [
        ("user group ops", "server group db"), ("user group ops", "server group web"),
        ("user alice", "server group web")]


def test_search_filters_by_subject_and_orders(dbsession, world):
    make_rule(dbsession, user=world["alice"], server=world["lone"])
    make_rule(dbsession, user_group=world["ops"], server=world["db1"])
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    make_rule(dbsession, user=world["bob"], server_group=world["db"])
    service = AccessService(dbsession)
    labels = [(r.subject_label, r.target_label) for r in dbsession.scalars(service.search())]
    assert labels == [
        ("user group ops", "server group web"),
        ("user group ops", "server db1"),
        ("user alice", "server lone"),
        ("user bob", "server group db"),
    ]
    assert [r.subject_label for r in dbsession.scalars(service.search("bo"))] == ["user bob"]
    assert len(list(dbsession.scalars(service.search("op")))) == 2


def test_rules_naming(dbsession, world):
    a = make_rule(dbsession, user=world["alice"], server=world["lone"])
    b = make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    service = AccessService(dbsession)
    assert service.rules_naming(server=world["lone"]) == [a]
    assert set(service.rules_naming(user=world["alice"], server_group=world["web"])) == {a, b}
    assert service.rules_naming() == []


def test_find_user_by_username_or_id(dbsession, world):
    service = AccessService(dbsession)
    assert service.find_user("alice") is world["alice"]
    assert service.find_user(world["bob"].id) is world["bob"]
    assert service.find_user("nobody") is None and service.find_user("") is None


def test_server_rows_are_untouched(dbsession, world):
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    AccessService(dbsession).effective_access(world["alice"])
    assert not dbsession.dirty and dbsession.query(Server).count() == 4
