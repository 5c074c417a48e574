"""User groups: the service that changes them."""
from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ezpyr.access.models import AccessRule
from ezpyr.activity.services import NoActivity
from ezpyr.guard.models import CommandRule
from ezpyr.paging import counts_by, cap_search
from ezpyr.users.models import User, UserGroup
from ezpyr.users.services import plural
from ezpyr.validation import Invalid


class UserGroupService:
    """User groups; changes are recorded in the activity log."""

    def __init__(self, dbsession: Session, activity=None):
        self.dbsession = dbsession
        self.activity = activity or NoActivity()

    def search(self, text: str = "") -> Select:
        text = cap_search(text)
        stmt = select(UserGroup).order_by(UserGroup.name)
        if text:
            stmt = stmt.where(UserGroup.name.contains(text, autoescape=True))
        return stmt

    def all(self) -> list[UserGroup]:
        return list(self.dbsession.scalars(self.search()))

    def get(self, group_id: str) -> UserGroup | None:
        return self.dbsession.get(UserGroup, group_id)

    def by_name(self, name: str) -> UserGroup | None:
        """The group of that name, compared case-insensitively (as names
        are unique); an exact match wins."""
        name = (name or "").strip()
        found = list(self.dbsession.scalars(select(UserGroup).where(
            func.lower(UserGroup.name) == name.lower())))
        return next((g for g in found if g.name == name), found[0] if found else None)

    def member_count(self, group: UserGroup) -> int:
        return self.member_counts([group])[group.id]

    def member_counts(self, groups: list[UserGroup]) -> dict[str, int]:
        """Members of each of ``groups``, by group id, in one query."""
        return counts_by(self.dbsession, User.group_id, [g.id for g in groups])

    def _check_name(self, name: str, group: UserGroup | None = None) -> str:
        name = (name or "").strip()
        if not name:
            raise Invalid("A name is required.", "name")
        if len(name) > 100:
            raise Invalid("The name must be at most 100 characters.", "name")
        # compared case-insensitively, as server names are ("Ops" and "ops" are one group)
        clash = self.dbsession.scalars(select(UserGroup).where(
            func.lower(UserGroup.name) == name.lower())).first()
        if clash is not None and clash is not group:
            raise Invalid(f"A user group named {name!r} already exists.", "name")
        return name

    def create(self, name: str, description: str = "") -> UserGroup:
        group = UserGroup(name=self._check_name(name), description=description or "")
        self.dbsession.add(group)
        self.dbsession.flush()
        self.activity.record("user_group.create", group.name)
        return group

    def update(self, group: UserGroup, name: str, description: str = "") -> UserGroup:
        old = group.name
        group.name = self._check_name(name, group)
        group.description = description or ""
        self.dbsession.flush()
        self.activity.record("user_group.update", group.name, f"renamed from {old}" if old != group.name else "")
        return group

    def dependants(self, group: UserGroup) -> dict[str, int]:
        """What deleting the group would also remove."""
        return {
            "access rules": self.dbsession.scalar(
                select(func.count()).select_from(AccessRule).where(AccessRule.user_group_id == group.id)
            ),
            "command rules": self.dbsession.scalar(
                select(func.count()).select_from(CommandRule).where(CommandRule.user_group_id == group.id)
            ),
        }

    def delete(self, group: UserGroup) -> dict[str, int]:
        """Delete an empty group with the access and command rules naming
        it; returns what went, as :meth:`dependants` counts it."""
        members = self.member_count(group)
        if members:
            raise Invalid(
                f"User group {group.name!r} still has {members} member"
                f"{'s' if members != 1 else ''}; move or delete them first."
            )
        gone = self.dependants(group)
        for model, column in ((AccessRule, AccessRule.user_group_id), (CommandRule, CommandRule.user_group_id)):
            for row in self.dbsession.scalars(select(model).where(column == group.id)):
                self.dbsession.delete(row)
        self.dbsession.delete(group)
        self.dbsession.flush()
        self.activity.record("user_group.delete", group.name,
                             f"{plural(gone['access rules'], 'access rule')} and "
                             f"{plural(gone['command rules'], 'command rule')} removed")
        return gone
