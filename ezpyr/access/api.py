"""The API's access rules and a user's effective access: the same services
as the panel's pages and ``ezpyr-admin access``."""
from __future__ import annotations

from ezpyr.access.models import AccessRule
from ezpyr.access.schemas import AccessRuleIn, AccessRuleOut, AccessRulePage, EffectiveAccessOut
from ezpyr.access.services import AccessService
from ezpyr.api.framework import (
    PAGED, ApiProblem, bad_cursor, body_of, check_if_match, cursor_of, endpoint, limit_of, one_page, query_text, route,
)
from ezpyr.api.schemas import DeletedOut

RULES = route("api.access_rules", "/access-rules")
RULE = route("api.access_rule", "/access-rules/{id}")
EFFECTIVE = route("api.user_effective_access", "/users/{id}/effective-access")

SEARCH = {**PAGED, "q": (PAGED["q"][0], "search in the subject: user group name, username or full name")}


def _service(request) -> AccessService:
    return request.services.access


def _rule(request) -> AccessRule:
    rule = _service(request).get(request.matchdict["id"])
    if rule is None:
        raise ApiProblem(404, "There is no access rule with that id.")
    return rule


def _after(request) -> tuple | None:
    """The cursor as a sort key: (users after groups?, subject, servers after groups?, target, id)."""
    values = cursor_of(request, 5)
    if values is None:
        return None
    if values[0] not in ("0", "1") or values[2] not in ("0", "1"):
        raise bad_cursor()
    return (values[0] == "1", values[1], values[2] == "1", values[3], values[4])


def _cursor(rule: AccessRule) -> list[str]:
    key = AccessService.sort_key(rule)
    return [str(int(key[0])), key[1], str(int(key[2])), key[3], key[4]]


@endpoint(RULES, "GET", "List access rules (paged: user groups' rules, then users', by name)",
          response=AccessRulePage, query=SEARCH, tag="access rules")
def list_rules(request):
    limit_of(request)  # a bad limit is refused before a bad cursor
    stmt = _service(request).search(query_text(request), after=_after(request))
    return one_page(request, stmt, lambda rows: [AccessRuleOut.of(r) for r in rows], _cursor)


@endpoint(RULES, "POST", "Let a user group or a user reach a server group or a server (a rule that "
          "exists already is refused)", body=AccessRuleIn, response=AccessRuleOut, status=201, write=True,
          etag=True, does="access.create", tag="access rules")
def create_rule(request):
    data = body_of(request, AccessRuleIn)
    service = _service(request)
    subject = service.subject_named(user_group=data.subject.user_group, user=data.subject.user)
    target = service.target_named(server_group=data.target.server_group, server=data.target.server)
    return AccessRuleOut.of(service.create(subject, target))


@endpoint(RULE, "GET", "One access rule", response=AccessRuleOut, etag=True, tag="access rules")
def get_rule(request):
    return AccessRuleOut.of(_rule(request))


@endpoint(RULE, "DELETE", "Remove an access rule (send If-Match with its ETag to refuse removing a rule "
          "that changed meanwhile)", response=DeletedOut, write=True, does="access.delete", tag="access rules")
def delete_rule(request):
    rule = _rule(request)
    check_if_match(request, AccessRuleOut.of(rule))
    rule_id = rule.id
    _service(request).delete(rule)
    return {"deleted": rule_id, "removed": {}}


@endpoint(EFFECTIVE, "GET", "Every server the user may reach, and through which rules (none when the "
          "user is suspended)", response=EffectiveAccessOut,
          query={"q": (PAGED["q"][0], "search in the servers' names and hosts")}, tag="access rules")
def effective_access(request):
    user = request.services.users.get(request.matchdict["id"])
    if user is None:
        raise ApiProblem(404, "There is no user with that id.")
    reaches = _service(request).effective_access(user, query_text(request))
    return EffectiveAccessOut.of(user, reaches)
