"""Users: the service that creates, changes, suspends and deletes them."""
import pytest

from ezpyr.access.models import AccessRule
from ezpyr.servers.models import ServerGroup
from ezpyr.settings.services import SettingsService
from ezpyr.passwords import policy_errors
from ezpyr.users.models import User, UserKey
from ezpyr.users.services import UserService, generate_password
from ezpyr.validation import Invalid
from tests.factories import PASSWORD, make_admin, make_user, make_user_group
from tests.users.conftest import make_key


@pytest.fixture
def service(dbsession, passwords):
    return UserService(dbsession, passwords)


@pytest.mark.parametrize("username", ["Bad Name", "root;rm", "Alice", "1abc", "", "a" * 33,
                                      "bob$", "-dash", "ü"])
def test_invalid_usernames_are_refused(service, dbsession, username):
    with pytest.raises(Invalid) as error:
        service.create(username, PASSWORD)
    assert error.value.field == "username"
    assert dbsession.query(User).count() == 0


@pytest.mark.parametrize("username", ["alice", "_svc", "a", "web-ops_2", "a" * 32])
def test_valid_usernames(service, username):
    assert service.create(username, PASSWORD).username == username


def test_create_refuses_a_duplicate_username_and_a_weak_password(service, dbsession, passwords):
    make_user(dbsession, passwords, "alice")
    with pytest.raises(Invalid, match="A user named 'alice' already exists") as error:
        service.create("alice", PASSWORD)
    assert error.value.field == "username"
    with pytest.raises(Invalid, match="at least 10 characters") as error:
        service.create("bob", "short")
    assert error.value.field == "password"
    assert dbsession.query(User).count() == 1


def test_update_changes_details_and_may_rename(service, dbsession, passwords):
    make_admin(dbsession, passwords, "boss")
    group = make_user_group(dbsession, "ops")
    user = make_user(dbsession, passwords, "alice")
    service.update(user, "alice2", role="admin", full_name=" Alice A ", email="a@example.org",
                   group_id=group.id)
    dbsession.commit()
    dbsession.expire_all()
    user = dbsession.get(User, user.id)
    assert (user.username, user.role, user.full_name, user.email, user.group.name) == (
        "alice2", "admin", "Alice A", "a@example.org", "ops")
    service.update(user, "alice2", role="user", group_id=None)
    assert user.group is None


@pytest.mark.parametrize("changes, field", [
    ({"username": "bob"}, "username"),
    ({"username": "Bad Name"}, "username"),
    ({"role": "root"}, "role"),
    ({"email": "not-an-address"}, "email"),
    ({"group_id": "no-such-group"}, "group_id"),
])
def test_update_refuses_bad_input_and_changes_nothing(service, dbsession, passwords, changes,
                                                      field):
    make_user(dbsession, passwords, "bob")
    user = make_user(dbsession, passwords, "alice")
    values = {"username": "alice", "role": "user", "email": "", "group_id": None, **changes}
    with pytest.raises(Invalid) as error:
        service.update(user, values.pop("username"), **values)
    assert error.value.field == field
    dbsession.rollback()
    assert dbsession.get(User, user.id).username == "alice"


def test_suspend_ends_sessions_and_reinstate(service, dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    stamp = user.auth_stamp
    service.suspend(user)
    assert user.suspended and user.auth_stamp != stamp
    with pytest.raises(Invalid, match="already suspended"):
        service.suspend(user)
    service.reinstate(user)
    assert not user.suspended
    with pytest.raises(Invalid, match="not suspended"):
        service.reinstate(user)


def test_the_last_active_admin_cannot_be_suspended_deleted_or_demoted(service, dbsession,
                                                                     passwords):
    admin = make_admin(dbsession, passwords, "boss")
    make_admin(dbsession, passwords, "old_boss")
    other = service.by_username("old_boss")
    service.suspend(other)  # a suspended admin does not count
    dbsession.commit()
    assert service.is_last_admin(admin)
    message = "boss is the last active admin"
    with pytest.raises(Invalid, match=message):
        service.suspend(admin)
    with pytest.raises(Invalid, match=message):
        service.delete(admin)
    with pytest.raises(Invalid, match=message) as error:
        service.update(admin, "boss", role="user")
    assert error.value.field == "role"
    dbsession.rollback()
    admin = service.by_username("boss")
    assert admin.is_admin and not admin.suspended

    # with a second active admin, each is no longer the last
    service.reinstate(service.by_username("old_boss"))
    assert not service.is_last_admin(admin)
    service.update(admin, "boss", role="user")
    assert service.is_last_admin(service.by_username("old_boss"))


def test_an_admin_cannot_suspend_delete_or_demote_themself(service, dbsession, passwords):
    me = make_admin(dbsession, passwords, "me")
    make_admin(dbsession, passwords, "other")
    with pytest.raises(Invalid, match="cannot suspend your own account"):
        service.suspend(me, actor=me)
    with pytest.raises(Invalid, match="cannot delete your own account"):
        service.delete(me, actor=me)
    with pytest.raises(Invalid, match="cannot remove your own admin role"):
        service.update(me, "me", role="user", actor=me)
    dbsession.rollback()
    me = service.by_username("me")
    assert me.is_admin and not me.suspended
    # other details of their own they may change
    service.update(me, "me2", role="admin", full_name="Me", actor=me)
    assert me.username == "me2"


def test_reset_password_typed_or_generated_ends_sessions(service, dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    stamp = user.auth_stamp
    assert service.reset_password(user, "Another-pass-99") is None
    assert passwords.verify(user.password_hash, "Another-pass-99")
    assert user.auth_stamp != stamp
    with pytest.raises(Invalid, match="at least 10 characters"):
        service.reset_password(user, "weak")
    stamp = user.auth_stamp
    generated = service.reset_password(user)
    assert generated and passwords.verify(user.password_hash, generated)
    assert user.auth_stamp != stamp


def test_generated_passwords_meet_the_strictest_policy(dbsession):
    SettingsService(dbsession).change(password_min_length=40, password_require_mixed=True)
    for _ in range(50):
        assert policy_errors(generate_password(40), 40, True) == []
    assert len(generate_password()) == 20
    assert len({generate_password() for _ in range(20)}) == 20


def test_a_generated_password_follows_the_length_setting(service, dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    SettingsService(dbsession).change(password_min_length=40)
    assert len(service.reset_password(user)) == 40


def test_change_own_password(service, dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    with pytest.raises(Invalid, match="not your current password") as error:
        service.change_own_password(user, "wrong", "Brand-new-pass-1")
    assert error.value.field == "current_password"
    with pytest.raises(Invalid, match="must differ") as error:
        service.change_own_password(user, PASSWORD, PASSWORD)
    with pytest.raises(Invalid, match="at least 10") as error:
        service.change_own_password(user, PASSWORD, "short")
    assert error.value.field == "new_password"
    assert passwords.verify(user.password_hash, PASSWORD)
    service.change_own_password(user, PASSWORD, "Brand-new-pass-1")
    assert passwords.verify(user.password_hash, "Brand-new-pass-1")


def test_reset_totp(service, dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    user.totp_enabled, user.totp_secret = True, "encrypted-secret"
    service.reset_totp(user)
    assert not user.totp_enabled and user.totp_secret is None


def test_delete_removes_keys_and_access_rules_that_name_the_user(service, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    bob = make_user(dbsession, passwords, "bob")
    make_key(dbsession, alice)
    make_key(dbsession, alice)
    bobs_key = make_key(dbsession, bob)
    web = ServerGroup(name="web")
    dbsession.add_all([web, AccessRule(user=alice, server_group=web),
                       AccessRule(user=bob, server_group=web)])
    dbsession.commit()
    assert service.dependants(alice) == {"SSH keys": 2, "access rules": 1}
    service.delete(alice)
    dbsession.commit()
    dbsession.expire_all()
    assert service.by_username("alice") is None
    assert [k.id for k in dbsession.query(UserKey)] == [bobs_key.id]
    assert [r.user_id for r in dbsession.query(AccessRule)] == [bob.id]
