"""GuardService: checking patterns, and deciding which commands are refused."""
import pytest

from ezpyr.guard.models import CommandRule
from ezpyr.guard.services import GuardService, check_pattern
from ezpyr.validation import Invalid
from tests.factories import make_user, make_user_group


@pytest.fixture
def ops(dbsession):
    return make_user_group(dbsession, "ops")


def test_check_returns_every_matching_rule(dbsession, ops):
    service = GuardService(dbsession)
    rm = service.create(ops.id, r"^rm\s+-rf", "no recursive deletes")
    shutdown = service.create(ops.id, r"\bshutdown\b")
    service.create(ops.id, r"^reboot$")
    dbsession.commit()
    assert service.check(ops, "ls -l") == []
    assert service.check(ops, "rm -rf /") == [rm]
    assert service.check(ops, "echo hi; shutdown -h now") == [shutdown]  # searched, not matched at 0
    assert set(service.check(ops, "rm -rf / && shutdown now")) == {rm, shutdown}
    assert service.check(ops, "reboot now") == []  # anchored at both ends
    assert service.check(ops, "sudo rm -rf /") == []  # ^ anchors to the line's start


def test_rules_belong_to_their_group_and_no_group_means_no_rules(dbsession, ops, passwords):
    dev = make_user_group(dbsession, "dev")
    service = GuardService(dbsession)
    service.create(dev.id, "reboot")
    dbsession.commit()
    assert service.check(ops, "reboot") == []
    assert service.check(None, "reboot") == []
    loner = make_user(dbsession, passwords, "loner")
    assert service.check_user(loner, "reboot") == []
    member = make_user(dbsession, passwords, "member", group=dev)
    assert [r.pattern for r in service.check_user(member, "reboot")] == ["reboot"]


def test_a_stored_pattern_that_does_not_compile_refuses_everything(dbsession, ops):
    broken = CommandRule(user_group=ops, pattern="([")  # as if written by another version
    dbsession.add(broken)
    dbsession.commit()
    assert GuardService(dbsession).check(ops, "ls") == [broken]


@pytest.mark.parametrize("pattern, message", [
    ("", "A pattern is required."),
    ("   ", "A pattern is required."),
    ("([", "This is not a valid regular expression: unterminated character set at position 1."),
    ("(a", "This is not a valid regular expression: missing ), unterminated subpattern at position 0."),
    ("a{2,1}", "This is not a valid regular expression: min repeat greater than max repeat"),
    ("x" * 501, "A pattern must be at most 500 characters; this one has 501."),
    ("rm\nls", "A pattern must be on one line."),
])
def test_bad_patterns_are_refused(pattern, message):
    with pytest.raises(Invalid) as info:
        check_pattern(pattern)
    assert info.value.message.startswith(message) and info.value.field == "pattern"


def test_patterns_are_kept_exactly(dbsession, ops):
    assert check_pattern("x" * 500) == "x" * 500
    rule = GuardService(dbsession).create(ops.id, "^rm ", "  trailing spaces in the description go  ")
    assert rule.pattern == "^rm " and rule.description == "trailing spaces in the description go"


def test_duplicates_within_a_group_are_refused_elsewhere_allowed(dbsession, ops):
    dev = make_user_group(dbsession, "dev")
    service = GuardService(dbsession)
    service.create(ops.id, "^rm ")
    with pytest.raises(Invalid) as info:
        service.create(ops.id, "^rm ")
    assert info.value.message == "User group ops already has a rule with this pattern."
    # other case, other trailing space, other group: all different rules
    service.create(ops.id, "^RM ")
    service.create(ops.id, "^rm")
    service.create(dev.id, "^rm ")
    dbsession.commit()
    assert dbsession.query(CommandRule).count() == 4


def test_update_and_its_duplicate_check(dbsession, ops):
    dev = make_user_group(dbsession, "dev")
    service = GuardService(dbsession)
    a = service.create(ops.id, "^a")
    b = service.create(ops.id, "^b")
    service.update(a, ops.id, "^a", "same pattern, new words")  # itself is no duplicate
    with pytest.raises(Invalid):
        service.update(a, ops.id, "^b")
    service.update(b, dev.id, "^b2", "moved")
    dbsession.commit()
    dbsession.expire_all()
    assert (b.user_group, b.pattern, b.description) == (dev, "^b2", "moved")
    assert a.description == "same pattern, new words"


def test_group_must_exist(dbsession):
    service = GuardService(dbsession)
    with pytest.raises(Invalid) as info:
        service.create("", "^rm")
    assert info.value.field == "user_group_id" and "Choose the user group" in info.value.message
    with pytest.raises(Invalid) as info:
        service.create("no-such-id", "^rm")
    assert "no longer exists" in info.value.message
    assert dbsession.query(CommandRule).count() == 0


def test_grouped_orders_and_filters(dbsession, ops):
    dev = make_user_group(dbsession, "dev")
    service = GuardService(dbsession)
    service.create(ops.id, "^rm", "deletes")
    service.create(dev.id, "^shutdown")
    service.create(dev.id, "^halt")
    dbsession.commit()
    grouped = service.grouped()
    assert [(g.group.name, [r.pattern for r in g.rules]) for g in grouped] == [
        ("dev", ["^halt", "^shutdown"]), ("ops", ["^rm"])]
    assert [g.group.name for g in service.grouped("delet")] == ["ops"]
    assert [g.group.name for g in service.grouped("dev")] == ["dev"]
    assert service.grouped("nothing") == []


def test_try_command(dbsession, ops, passwords):
    service = GuardService(dbsession)
    rule = service.create(ops.id, "^rm")
    alice = make_user(dbsession, passwords, "alice", group=ops)
    make_user(dbsession, passwords, "loner")
    verdict = service.try_command("rm x", user_group_id=ops.id)
    assert not verdict.allowed and verdict.refused_by == [rule] and verdict.user is None
    verdict = service.try_command("rm x", username="alice")
    assert verdict.user is alice and verdict.group is ops and not verdict.allowed
    verdict = service.try_command("rm x", username="loner")
    assert verdict.allowed and verdict.group is None
    for kwargs, field in [({}, "user_group_id"), ({"username": "ghost"}, "username"),
                          ({"user_group_id": "gone"}, "user_group_id"),
                          ({"user_group_id": ops.id, "username": "alice"}, "username")]:
        with pytest.raises(Invalid) as info:
            service.try_command("rm x", **kwargs)
        assert info.value.field == field
    with pytest.raises(Invalid) as info:
        service.try_command("  ", user_group_id=ops.id)
    assert info.value.field == "command"


class Recorded:
    def __init__(self):
        self.entries = []

    def record(self, action, target="", details="", **_who):
        self.entries.append((action, target, details))


def test_changes_are_recorded_by_the_service(dbsession, ops):
    dev = make_user_group(dbsession, "dev")
    activity = Recorded()
    service = GuardService(dbsession, activity)
    rule = service.create(ops.id, "^rm")
    service.update(rule, ops.id, "^rm", "words only")
    service.update(rule, dev.id, "^rm -rf")
    service.delete(rule)
    assert activity.entries == [
        ("guard.create", "ops: ^rm", ""), ("guard.update", "ops: ^rm", ""),
        ("guard.update", "dev: ^rm -rf", "was ops: ^rm"), ("guard.delete", "dev: ^rm -rf", "")]
    with pytest.raises(Invalid):
        service.create(ops.id, "(a|aa)+$")  # catastrophic backtracking: refused, nothing recorded
    assert len(activity.entries) == 4


def test_search_pages_from_a_rules_sort_key(dbsession, ops):
    dev = make_user_group(dbsession, "dev")
    service = GuardService(dbsession)
    for group, pattern in [(ops, "^b"), (ops, "^a"), (dev, "^z"), (ops, "^c"), (dev, "^a")]:
        service.create(group.id, pattern)
    dbsession.commit()
    seen, after = [], None
    while page := list(dbsession.scalars(service.search(after=after).limit(2))):
        seen += [(r.user_group.name, r.pattern) for r in page]
        after = service.sort_key(page[-1])
    assert seen == [("dev", "^a"), ("dev", "^z"), ("ops", "^a"), ("ops", "^b"), ("ops", "^c")]


def test_a_group_by_name_and_a_verdict(dbsession, ops, passwords):
    service = GuardService(dbsession)
    assert service.group_named("OPS") is ops
    with pytest.raises(Invalid) as info:
        service.group_named("nope")
    assert (info.value.message, info.value.field) == ("There is no user group named 'nope'.", "user_group_id")
    rule = service.create(ops.id, r"\bshutdown\b")
    alice = make_user(dbsession, passwords, "alice", group=ops)
    verdict = service.verdict("echo hi; shutdown now", None, alice)
    assert (verdict.allowed, verdict.group, verdict.refused_by, verdict.rule_count) == (False, ops, [rule], 1)
    assert service.verdict("ls", ops).allowed
    with pytest.raises(Invalid) as info:
        service.verdict(" ", ops)
    assert info.value.field == "command"
