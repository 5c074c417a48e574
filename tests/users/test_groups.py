"""User groups: pages and service."""
import pytest

from ezpyr.access.models import AccessRule
from ezpyr.guard.models import CommandRule
from ezpyr.servers.models import ServerGroup
from ezpyr.users.groups import UserGroupService
from ezpyr.users.models import UserGroup
from ezpyr.validation import Invalid
from tests.factories import make_user, make_user_group, post


def test_create_edit_delete(admin_app, dbsession):
    res = post(admin_app, "/user-groups/new", {"name": "ops", "description": "Operations"})
    assert res.status_int == 303
    page = admin_app.get("/user-groups")
    assert "ops" in page and "User group ops created." in page
    group = dbsession.query(UserGroup).one()

    res = post(admin_app, f"/user-groups/{group.id}/edit", {"name": "operations", "description": ""})
    assert res.status_int == 303
    dbsession.expire_all()
    assert dbsession.get(UserGroup, group.id).name == "operations"

    res = post(admin_app, f"/user-groups/{group.id}/delete")
    assert res.status_int == 303
    dbsession.expire_all()
    assert dbsession.query(UserGroup).count() == 0


def test_search_and_paging(admin_app, dbsession):
    for i in range(30):
        UserGroupService(dbsession).create(f"team{i:02d}")
    dbsession.commit()
    page1 = admin_app.get("/user-groups")
    assert "Page 1 of 2" in page1 and "team00" in page1 and "team29" not in page1
    page2 = admin_app.get("/user-groups", {"page": 2})
    assert "team29" in page2
    found = admin_app.get("/user-groups", {"q": "team1"})
    assert "team15" in found and "team25" not in found


def test_blank_and_duplicate_names_are_refused_beside_the_field(admin_app, dbsession):
    make_user_group(dbsession, "ops")
    res = post(admin_app, "/user-groups/new", {"name": "  "})
    assert res.status_int == 200 and "This field is required." in res
    res = post(admin_app, "/user-groups/new", {"name": "ops"})
    assert res.status_int == 200 and "A user group named &#39;ops&#39; already exists." in res
    dbsession.expire_all()
    assert dbsession.query(UserGroup).count() == 1


def test_deleting_a_group_with_members_is_refused(admin_app, dbsession, passwords):
    group = make_user_group(dbsession, "ops")
    make_user(dbsession, passwords, "bob", group=group)
    page = admin_app.get(f"/user-groups/{group.id}/delete")
    assert "still has 1 member" in page
    res = post(admin_app, f"/user-groups/{group.id}/delete", form_url="/user-groups")
    assert res.status_int == 303
    assert "still has 1 member; move or delete them first." in res.follow()
    dbsession.expire_all()
    assert dbsession.get(UserGroup, group.id) is not None


def test_delete_removes_rules_that_name_the_group(dbsession):
    service = UserGroupService(dbsession)
    group = service.create("ops")
    servers = ServerGroup(name="web")
    dbsession.add_all([servers, AccessRule(user_group=group, server_group=servers),
                       CommandRule(user_group=group, pattern="^rm ")])
    dbsession.commit()
    assert service.dependants(group) == {"access rules": 1, "command rules": 1}
    service.delete(group)
    dbsession.commit()
    assert dbsession.query(AccessRule).count() == 0
    assert dbsession.query(CommandRule).count() == 0


def test_unknown_group_is_404(admin_app):
    admin_app.get("/user-groups/nope/edit", status=404)


def test_service_refuses_overlong_name(dbsession):
    with pytest.raises(Invalid) as info:
        UserGroupService(dbsession).create("x" * 101)
    assert info.value.field == "name"
