"""Access rules: who may reach which servers, and what that adds up to.

A rule names one subject (a user group or a single user) and one target (a
server group or a single server). A user reaches a server when at least one
rule joins them, by any of four paths:

* the user's group  -> the server's group
* the user's group  -> that server
* the user          -> the server's group
* the user          -> that server

A suspended user reaches nothing. :meth:`AccessService.effective_access` and
:meth:`AccessService.can_reach` are the API the gateway shell uses.

A rule's subject and target are given to the service as :class:`Subject`
and :class:`Target` (a kind and a row id); how a face names them (the
panel's "ug:<id>" option values, the API's and the command line's names)
is that face's business.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Select, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased, joinedload

from ezpyr.activity.services import NoActivity
from ezpyr.paging import cap_search
from ezpyr.access.models import AccessRule
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.users.models import User, UserGroup
from ezpyr.validation import Invalid

SUBJECT_MODELS = {"user_group": UserGroup, "user": User}
TARGET_MODELS = {"server_group": ServerGroup, "server": Server}
KIND_WORDS = {"user_group": "user group", "user": "user", "server_group": "server group",
              "server": "server"}


@dataclass(frozen=True)
class Subject:
    """Who a rule lets in: a user group or one user, by id."""

    kind: Literal["user_group", "user"]
    id: str


@dataclass(frozen=True)
class Target:
    """What a rule lets them reach: a server group or one server, by id."""

    kind: Literal["server_group", "server"]
    id: str


def rule_label(rule: AccessRule) -> str:
    """How the activity log, the panel and the command line name a rule."""
    return f"{rule.subject_label} → {rule.target_label}"


@dataclass
class Reach:
    """One server a user may reach, and every rule that grants it."""

    server: Server
    rules: list[AccessRule] = field(default_factory=list)

    @property
    def via(self) -> list[str]:
        return [rule_label(rule) for rule in self.rules]


def _rule_options():
    return (
        joinedload(AccessRule.user_group),
        joinedload(AccessRule.user),
        joinedload(AccessRule.server_group),
        joinedload(AccessRule.server),
    )


def _subject_filter(user: User):
    """Rules whose subject is ``user`` or ``user``'s group."""
    subjects = [AccessRule.user_id == user.id]
    if user.group_id is not None:
        subjects.append(AccessRule.user_group_id == user.group_id)
    return or_(*subjects)


class AccessService:
    """Access rules; each change is recorded in the activity log
    (``activity``: ``Services.activity``, acting for whoever asked)."""

    def __init__(self, dbsession: Session, activity=None):
        self.dbsession = dbsession
        self.activity = activity or NoActivity()

    # -- reading rules ---------------------------------------------------------
    def get(self, rule_id: str) -> AccessRule | None:
        return self.dbsession.get(AccessRule, rule_id)

    def search(self, text: str = "", after: tuple | None = None) -> Select:
        """Every rule, ordered by subject then target (user groups before
        users, server groups before servers); ``text`` keeps the rules whose
        subject (user group name, username or full name) contains it;
        ``after`` (a rule's :meth:`sort_key`) keeps the rules that come
        after that one (the next page)."""
        text = cap_search(text)
        ug, u = aliased(UserGroup), aliased(User)
        sg, s = aliased(ServerGroup), aliased(Server)
        keys = (
            AccessRule.user_group_id.is_(None),  # user groups first, then users
            func.coalesce(ug.name, u.username),
            AccessRule.server_group_id.is_(None),  # server groups first, then servers
            func.coalesce(sg.name, s.name),
            AccessRule.id,
        )
        stmt = (
            select(AccessRule)
            .outerjoin(ug, AccessRule.user_group_id == ug.id)
            .outerjoin(u, AccessRule.user_id == u.id)
            .outerjoin(sg, AccessRule.server_group_id == sg.id)
            .outerjoin(s, AccessRule.server_id == s.id)
            .options(*_rule_options())
            .order_by(*keys)
        )
        if text:
            stmt = stmt.where(or_(
                ug.name.contains(text, autoescape=True),
                u.username.contains(text, autoescape=True),
                u.full_name.contains(text, autoescape=True),
            ))
        if after is not None:
            stmt = stmt.where(tuple_(*keys) > tuple_(*after))
        return stmt

    @staticmethod
    def sort_key(rule: AccessRule) -> tuple[bool, str, bool, str, str]:
        """Where ``rule`` stands in :meth:`search`'s order."""
        subject = rule.user_group.name if rule.user_group is not None else rule.user.username
        target = rule.server_group.name if rule.server_group is not None else rule.server.name
        return (rule.user_group_id is None, subject, rule.server_group_id is None, target, rule.id)

    def subject_choices(self) -> dict[str, list[tuple[Subject, str]]]:
        """What a rule may name as its subject: {"User groups": [(subject, label)], "Users": [...]}."""
        groups = self.dbsession.scalars(select(UserGroup).order_by(UserGroup.name))
        users = self.dbsession.scalars(select(User).order_by(User.username))
        return {
            "User groups": [(Subject("user_group", g.id), g.name) for g in groups],
            "Users": [
                (Subject("user", u.id), f"{u.username} ({u.full_name})" if u.full_name else u.username)
                for u in users
            ],
        }

    def target_choices(self) -> dict[str, list[tuple[Target, str]]]:
        """What a rule may name as its target: {"Server groups": [...], "Servers": [...]}."""
        groups = self.dbsession.scalars(select(ServerGroup).order_by(ServerGroup.name))
        servers = self.dbsession.scalars(select(Server).order_by(Server.name))
        return {
            "Server groups": [(Target("server_group", g.id), g.name) for g in groups],
            "Servers": [(Target("server", s.id), f"{s.name} ({s.host})") for s in servers],
        }

    # -- naming a subject or a target ---------------------------------------------
    def subject_named(self, *, user_group: str | None = None, user: str | None = None) -> Subject:
        """The subject a user group's name or a username names (as the API
        gives them); Invalid when there is none."""
        if (user_group is None) == (user is None):
            raise Invalid("Name a user group or a user (one of them).", "subject")
        if user_group is not None:
            name = user_group.strip()
            found = self.dbsession.scalars(
                select(UserGroup).where(func.lower(UserGroup.name) == name.lower())).first()
            if found is None:
                raise Invalid(f"There is no user group named {name!r}.", "subject")
            return Subject("user_group", found.id)
        username = user.strip()
        found = self.dbsession.scalars(select(User).where(User.username == username)).first()
        if found is None or found.username != username:
            raise Invalid(f"There is no user named {username!r}.", "subject")
        return Subject("user", found.id)

    def target_named(self, *, server_group: str | None = None, server: str | None = None) -> Target:
        """The target a server group's or a server's name names
        (case-insensitively, the exact case first); Invalid when there is none."""
        if (server_group is None) == (server is None):
            raise Invalid("Name a server group or a server (one of them).", "target")
        kind, model, name = (("server_group", ServerGroup, server_group) if server_group is not None
                             else ("server", Server, server))
        name = name.strip()
        rows = self.dbsession.scalars(
            select(model).where(func.lower(model.name) == name.lower()).order_by(model.id)).all()
        exact = [row for row in rows if row.name == name]
        found = (exact or rows or [None])[0]
        if found is None:
            raise Invalid(f"There is no {KIND_WORDS[kind]} named {name!r}.", "target")
        return Target(kind, found.id)

    # -- changing rules ---------------------------------------------------------
    def _row(self, ref: Subject | Target, models: dict, field_name: str, what: str):
        model = models.get(ref.kind)
        if model is None or not ref.id:
            raise Invalid(f"Choose {what}.", field_name)
        row = self.dbsession.get(model, ref.id)
        if row is None:
            raise Invalid(
                f"That {KIND_WORDS[ref.kind]} no longer exists (it may have just been "
                f"deleted); choose {what} again.",
                field_name,
            )
        return row

    def create(self, subject: Subject, target: Target) -> AccessRule:
        """A new rule letting ``subject`` reach ``target``; a duplicate is refused."""
        who = self._row(subject, SUBJECT_MODELS, "subject", "who gets access")
        what = self._row(target, TARGET_MODELS, "target", "what they may reach")
        columns = {
            f"{subject.kind}_id": who.id,
            f"{target.kind}_id": what.id,
        }
        existing = self.dbsession.scalars(select(AccessRule).filter_by(**columns)).first()
        if existing is not None:
            raise Invalid(
                f"This rule already exists: {existing.subject_label} may already reach "
                f"{existing.target_label}. Nothing was added."
            )
        rule = AccessRule(**columns)
        self.dbsession.add(rule)
        self.dbsession.flush()
        self.dbsession.refresh(rule)  # load the relationships for its labels
        self.activity.record("access.create", rule_label(rule))
        return rule

    def delete(self, rule: AccessRule) -> None:
        label = rule_label(rule)
        self.dbsession.delete(rule)
        self.dbsession.flush()
        self.activity.record("access.delete", label)

    def rules_naming(self, *, user_group: UserGroup | None = None, user: User | None = None,
                     server_group: ServerGroup | None = None,
                     server: Server | None = None) -> list[AccessRule]:
        """The rules that name any of the given rows (to show or remove them
        before the row itself is deleted)."""
        conditions = []
        if user_group is not None:
            conditions.append(AccessRule.user_group_id == user_group.id)
        if user is not None:
            conditions.append(AccessRule.user_id == user.id)
        if server_group is not None:
            conditions.append(AccessRule.server_group_id == server_group.id)
        if server is not None:
            conditions.append(AccessRule.server_id == server.id)
        if not conditions:
            return []
        return list(self.dbsession.scalars(select(AccessRule).where(or_(*conditions))))

    # -- what it adds up to -------------------------------------------------------
    def rules_for(self, user: User) -> list[AccessRule]:
        """Every rule whose subject is the user or the user's group."""
        return list(self.dbsession.scalars(
            select(AccessRule).where(_subject_filter(user)).options(*_rule_options())
        ))

    def effective_access(self, user: User, search: str = "") -> list[Reach]:
        """Every server ``user`` may reach, by name, with the rules that grant
        it (two queries, however many servers). ``search`` keeps the servers
        whose name or host contains it. A suspended user reaches nothing."""
        search = cap_search(search)
        if user.suspended:
            return []
        rules = self.rules_for(user)
        if not rules:
            return []
        by_server: dict[str, list[AccessRule]] = {}
        by_group: dict[str, list[AccessRule]] = {}
        for rule in rules:
            if rule.server_id is not None:
                by_server.setdefault(rule.server_id, []).append(rule)
            else:
                by_group.setdefault(rule.server_group_id, []).append(rule)
        targets = []
        if by_server:
            targets.append(Server.id.in_(list(by_server)))
        if by_group:
            targets.append(Server.group_id.in_(list(by_group)))
        stmt = (
            select(Server)
            .where(or_(*targets))
            .options(joinedload(Server.group))
            .order_by(Server.name)
        )
        if search:
            stmt = stmt.where(or_(
                Server.name.contains(search, autoescape=True),
                Server.host.contains(search, autoescape=True),
            ))
        order = {"u": 0, "ug": 1}  # the user's own rules first
        reaches = []
        for server in self.dbsession.scalars(stmt):
            granting = by_server.get(server.id, []) + by_group.get(server.group_id, [])
            granting.sort(key=lambda r: (order["u" if r.user_id else "ug"], r.server_id is None))
            reaches.append(Reach(server, granting))
        return reaches

    def can_reach(self, user: User, server: Server) -> bool:
        """Whether ``user`` may reach ``server`` (one query)."""
        if user.suspended:
            return False
        target = AccessRule.server_id == server.id
        if server.group_id is not None:
            target = or_(target, AccessRule.server_group_id == server.group_id)
        found = self.dbsession.scalar(
            select(AccessRule.id).where(_subject_filter(user), target).limit(1)
        )
        return found is not None

    # -- finding the user the effective access page asks about ------------------
    def usernames(self) -> list[str]:
        return list(self.dbsession.scalars(select(User.username).order_by(User.username)))

    def find_user(self, id_or_username: str) -> User | None:
        text = (id_or_username or "").strip()
        if not text:
            return None
        user = self.dbsession.scalars(select(User).where(User.username == text)).first()
        return user if user is not None else self.dbsession.get(User, text)

