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
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased, joinedload

from ezpyr.paging import cap_search
from ezpyr.access.models import AccessRule
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.users.models import User, UserGroup
from ezpyr.validation import Invalid

# Form values naming a subject or a target: "<kind>:<id>".
SUBJECT_KINDS = {"ug": UserGroup, "u": User}
TARGET_KINDS = {"sg": ServerGroup, "s": Server}
_KIND_WORDS = {"ug": "user group", "u": "user", "sg": "server group", "s": "server"}


@dataclass
class Reach:
    """One server a user may reach, and every rule that grants it."""

    server: Server
    rules: list[AccessRule] = field(default_factory=list)

    @property
    def via(self) -> list[str]:
        return [f"{rule.subject_label} → {rule.target_label}" for rule in self.rules]


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
    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    # -- reading rules ---------------------------------------------------------
    def get(self, rule_id: str) -> AccessRule | None:
        return self.dbsession.get(AccessRule, rule_id)

    def search(self, text: str = "") -> Select:
        """Every rule, ordered by subject then target; ``text`` keeps the rules
        whose subject (user group name, username or full name) contains it."""
        text = cap_search(text)
        ug, u = aliased(UserGroup), aliased(User)
        sg, s = aliased(ServerGroup), aliased(Server)
        subject = func.coalesce(ug.name, u.username)
        stmt = (
            select(AccessRule)
            .outerjoin(ug, AccessRule.user_group_id == ug.id)
            .outerjoin(u, AccessRule.user_id == u.id)
            .outerjoin(sg, AccessRule.server_group_id == sg.id)
            .outerjoin(s, AccessRule.server_id == s.id)
            .options(*_rule_options())
            .order_by(
                AccessRule.user_group_id.is_(None),  # user groups first, then users
                subject,
                AccessRule.server_group_id.is_(None),  # server groups first, then servers
                func.coalesce(sg.name, s.name),
                AccessRule.id,
            )
        )
        if text:
            stmt = stmt.where(or_(
                ug.name.contains(text, autoescape=True),
                u.username.contains(text, autoescape=True),
                u.full_name.contains(text, autoescape=True),
            ))
        return stmt

    def subject_choices(self) -> dict[str, list[tuple[str, str]]]:
        """What a rule may name as its subject: {"User groups": [(value, label)], "Users": [...]}."""
        groups = self.dbsession.scalars(select(UserGroup).order_by(UserGroup.name))
        users = self.dbsession.scalars(select(User).order_by(User.username))
        return {
            "User groups": [(f"ug:{g.id}", g.name) for g in groups],
            "Users": [
                (f"u:{u.id}", f"{u.username} ({u.full_name})" if u.full_name else u.username)
                for u in users
            ],
        }

    def target_choices(self) -> dict[str, list[tuple[str, str]]]:
        """What a rule may name as its target: {"Server groups": [...], "Servers": [...]}."""
        groups = self.dbsession.scalars(select(ServerGroup).order_by(ServerGroup.name))
        servers = self.dbsession.scalars(select(Server).order_by(Server.name))
        return {
            "Server groups": [(f"sg:{g.id}", g.name) for g in groups],
            "Servers": [(f"s:{s.id}", f"{s.name} ({s.host})") for s in servers],
        }

    # -- changing rules ---------------------------------------------------------
    def _resolve(self, value: str, kinds: dict, field_name: str, what: str):
        kind, _, row_id = (value or "").strip().partition(":")
        if not value or not row_id or kind not in kinds:
            raise Invalid(f"Choose {what} from the list.", field_name)
        row = self.dbsession.get(kinds[kind], row_id)
        if row is None:
            raise Invalid(
                f"That {_KIND_WORDS[kind]} no longer exists (it may have just been "
                f"deleted); choose {what} again from the list.",
                field_name,
            )
        return kind, row

    def create(self, subject: str, target: str) -> AccessRule:
        """A new rule from form values "ug:<id>" / "u:<id>" and "sg:<id>" / "s:<id>"."""
        subject_kind, who = self._resolve(subject, SUBJECT_KINDS, "subject", "who gets access")
        target_kind, what = self._resolve(target, TARGET_KINDS, "target", "what they may reach")
        columns = {
            "user_group_id" if subject_kind == "ug" else "user_id": who.id,
            "server_group_id" if target_kind == "sg" else "server_id": what.id,
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
        return rule

    def delete(self, rule: AccessRule) -> None:
        self.dbsession.delete(rule)
        self.dbsession.flush()

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

