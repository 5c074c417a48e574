"""The API's command guard rules and "test a command": the same services as
the panel's pages and ``ezpyr-admin guard``."""
from __future__ import annotations

from ezpyr.api.framework import (
    PAGED, ApiProblem, body_of, check_if_match, cursor_of, endpoint, limit_of, one_page, query_text, route,
)
from ezpyr.api.schemas import DeletedOut
from ezpyr.guard.models import CommandRule
from ezpyr.guard.schemas import GuardRuleIn, GuardRuleOut, GuardRulePage, GuardRulePatch, GuardTestIn, GuardTestOut
from ezpyr.guard.services import GuardService
from ezpyr.validation import Invalid

RULES = route("api.guard_rules", "/guard-rules")
RULE = route("api.guard_rule", "/guard-rules/{id}")
TEST = route("api.guard_test", "/guard/test")

SEARCH = {**PAGED, "q": (PAGED["q"][0], "search in patterns, descriptions and user group names")}


def _service(request) -> GuardService:
    return request.services.guard


def _rule(request) -> CommandRule:
    rule = _service(request).get(request.matchdict["id"])
    if rule is None:
        raise ApiProblem(404, "There is no command rule with that id.")
    return rule


@endpoint(RULES, "GET", "List command rules (paged by user group name, then pattern)", response=GuardRulePage,
          query=SEARCH, tag="command guard")
def list_rules(request):
    limit_of(request)  # a bad limit is refused before a bad cursor
    after = cursor_of(request, 3)
    stmt = _service(request).search(query_text(request), after=tuple(after) if after else None)
    return one_page(request, stmt, lambda rows: [GuardRuleOut.of(r) for r in rows],
                    lambda last: list(GuardService.sort_key(last)))


@endpoint(RULES, "POST", "Refuse, for one user group, the commands that match a pattern (the same pattern "
          "twice in a group is refused)", body=GuardRuleIn, response=GuardRuleOut, status=201, write=True,
          etag=True, does="guard.create", tag="command guard")
def create_rule(request):
    data = body_of(request, GuardRuleIn)
    service = _service(request)
    group = service.group_named(data.user_group)
    return GuardRuleOut.of(service.create(group.id, data.pattern, data.description))


@endpoint(RULE, "GET", "One command rule", response=GuardRuleOut, etag=True, tag="command guard")
def get_rule(request):
    return GuardRuleOut.of(_rule(request))


@endpoint(RULE, "PATCH", "Change a command rule (send If-Match with its ETag to refuse a lost update)",
          body=GuardRulePatch, response=GuardRuleOut, write=True, etag=True, does="guard.update",
          tag="command guard")
def patch_rule(request):
    rule = _rule(request)
    check_if_match(request, GuardRuleOut.of(rule))
    data = body_of(request, GuardRulePatch)
    service = _service(request)
    group = service.group_named(data.user_group) if data.user_group is not None else rule.user_group
    service.update(rule, group.id,
                   data.pattern if data.pattern is not None else rule.pattern,
                   data.description if data.description is not None else rule.description)
    return GuardRuleOut.of(rule)


@endpoint(RULE, "DELETE", "Remove a command rule", response=DeletedOut, write=True, does="guard.delete",
          tag="command guard")
def delete_rule(request):
    rule = _rule(request)
    check_if_match(request, GuardRuleOut.of(rule))
    rule_id = rule.id
    _service(request).delete(rule)
    return {"deleted": rule_id, "removed": {}}


@endpoint(TEST, "POST", "Whether the guard lets a command through, for a user group or a user, and which "
          "rules refuse it (changes nothing)", body=GuardTestIn, response=GuardTestOut, tag="command guard")
def test_command(request):
    data = body_of(request, GuardTestIn)
    service = _service(request)
    if data.user is not None:
        user = request.services.users.by_username(data.user.strip())
        if user is None:
            raise Invalid(f"There is no user named {data.user.strip()!r}.", "user")
        return GuardTestOut.of(service.verdict(data.command, None, user))
    return GuardTestOut.of(service.verdict(data.command, service.group_named(data.user_group)))
