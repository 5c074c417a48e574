"""Servers and server groups: the services that change them.

:class:`ServerService` holds every rule a server must satisfy. The server
form and the CSV import both go through :meth:`ServerService.validate`, so a
row of a CSV file is accepted exactly when the same values typed into the
form would be.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from ezpyr.access.models import AccessRule
from ezpyr.activity.services import NoActivity
from ezpyr.meta import new_uuid
from ezpyr.paging import counts_by, cap_search
from ezpyr.secretbox import SecretBox
from ezpyr.servers.models import AUTH_METHODS, Server, ServerGroup
from ezpyr.users.services import USERNAME_RE
from ezpyr.validation import Invalid, has_control

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# One label of a host name (RFC 1123): letters, digits and "-", 1 to 63 of
# them, not starting or ending with "-".
HOST_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
HOST_MAX = 253
DESCRIPTION_MAX = 2000
PASSWORD_MAX = 1024
GROUP_NAME_MAX = 100
# Form value of the server list's group filter for "servers without a group".
NO_GROUP = "none"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- single-field rules ------------------------------------------------------------

def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A name is required.", "name")
    if not NAME_RE.fullmatch(name):
        raise Invalid("A server name is 1 to 100 characters: letters, digits, '.', '_' or '-'.",
                      "name")
    return name


def check_host(host: str) -> str:
    """A host name (RFC 1123) or an IPv4/IPv6 address, nothing else: the value
    ends up on an ssh command line, so spaces, shell metacharacters, a
    leading '-' or an IPv6 zone are all refused."""
    host = (host or "").strip()
    if not host:
        raise Invalid("A host is required.", "host")
    message = ("Host must be a host name (letters, digits, '-' and '.', e.g. web1.example.com) "
               "or an IPv4 or IPv6 address, with no spaces or other characters.")
    if len(host) > HOST_MAX:
        raise Invalid(f"Host must be at most {HOST_MAX} characters.", "host")
    if ":" in host:
        # Only an IPv6 address has a colon; no zone ("%eth0"), no brackets.
        if "%" in host:
            raise Invalid(message, "host")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise Invalid(message, "host") from None
        return host
    labels = host.split(".")
    if all(label.isdigit() for label in labels):
        # Looks like an IPv4 address, so it must be a valid one.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise Invalid(f"{host!r} is not a valid IPv4 address.", "host") from None
        return host
    if not all(HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise Invalid(message, "host")
    if labels[-1].isdigit():
        # RFC 1123 §2.1: the top-level label is never all digits.
        raise Invalid(message, "host")
    return host


def check_port(port) -> int:
    if isinstance(port, bool):
        port = None
    if isinstance(port, str):
        text = port.strip()
        port = int(text) if text.isascii() and text.isdigit() and len(text) <= 5 else None
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise Invalid("Port must be a number from 1 to 65535.", "port")
    return port


def check_remote_user(remote_user: str) -> str:
    remote_user = (remote_user or "").strip()
    if not USERNAME_RE.fullmatch(remote_user):
        raise Invalid(
            "Remote user must be 1 to 32 characters: lower-case letters, digits, '_' or '-', "
            "starting with a letter or '_' (e.g. root or deploy).",
            "remote_user",
        )
    return remote_user


def check_auth_method(auth_method: str) -> str:
    auth_method = (auth_method or "").strip()
    if auth_method not in AUTH_METHODS:
        raise Invalid(
            "Authentication must be 'key' (the gateway key) or 'password' (a stored password).",
            "auth_method",
        )
    return auth_method


def check_password(password: str) -> str:
    if len(password) > PASSWORD_MAX:
        raise Invalid(f"Password must be at most {PASSWORD_MAX} characters.", "password")
    if has_control(password):
        raise Invalid("Password must be on one line, without control characters (such as NUL).",
                      "password")
    return password


def check_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise Invalid(f"Description must be at most {DESCRIPTION_MAX} characters.", "description")
    if has_control(description, multi_line=True):
        raise Invalid("Description must not hold control characters (such as NUL); line breaks "
                      "and tabs are fine.", "description")
    return description


# -- servers ---------------------------------------------------------------------

@dataclass
class ServerInput:
    """What an admin typed (or a CSV row holds), before any check.

    The form picks a group by id (``group_id``); an import row names it
    (``group_name``). ``password`` is the plain password as typed, "" for none.
    """

    name: str = ""
    host: str = ""
    port: str | int | None = 22
    remote_user: str = "root"
    auth_method: str = "key"
    password: str = ""
    group_id: str | None = None
    group_name: str | None = None
    description: str = ""


@dataclass
class ServerValues:
    """Checked values, ready to store. ``password`` None: keep what is stored."""

    name: str
    host: str
    port: int
    remote_user: str
    auth_method: str
    password: str | None
    group: ServerGroup | None
    description: str

    def __repr__(self) -> str:  # never show the password
        return f"<ServerValues {self.name}>"


class InvalidServer(Invalid):
    """Every reason a server's values were refused (``errors``); the first
    one is also the message and field of this exception."""

    def __init__(self, errors: list[Invalid]):
        super().__init__(errors[0].message, errors[0].field)
        self.errors = errors


class ServerLookup:
    """Answers the checks that need the database (is the name taken, which
    group is meant) one query at a time: right for a form."""

    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    def name_owner(self, name: str) -> str | None:
        """The id of the server that has ``name`` (case-insensitively): on
        MariaDB the column compares without case (an index seek), on SQLite
        by lower-casing both."""
        if self.dbsession.get_bind().dialect.name in ("mysql", "mariadb"):
            same_name = Server.name == name
        else:
            same_name = func.lower(Server.name) == name.lower()
        return self.dbsession.scalars(select(Server.id).where(same_name)).first()

    def group_by_id(self, group_id: str) -> ServerGroup | None:
        return self.dbsession.get(ServerGroup, group_id)

    def group_by_name(self, name: str) -> ServerGroup | None:
        groups = self.dbsession.scalars(
            select(ServerGroup).where(func.lower(ServerGroup.name) == name.lower())
        ).all()
        return _best_group(groups, name)


# names asked for in one query, when a lookup is given the names it will be asked about
NAMES_PER_QUERY = 1000


class PreloadedLookup(ServerLookup):
    """The same answers from names and groups read set-wise, up front:
    right for checking thousands of rows (a CSV import). Given ``names``
    (every name it will be asked about), it reads only the servers holding
    one of them, a thousand names a query (on MariaDB an index seek each;
    SQLite, which compares by lower-casing, reads every name once);
    without, every server's name."""

    def __init__(self, dbsession: Session, names: list[str] | None = None):
        super().__init__(dbsession)
        self._names = {name.lower(): server_id for server_id, name in _names_held(dbsession, names)}
        self._groups = list(dbsession.scalars(select(ServerGroup)))
        self._by_id = {g.id: g for g in self._groups}
        self._by_name: dict[str, list[ServerGroup]] = {}
        for group in self._groups:
            self._by_name.setdefault(group.name.lower(), []).append(group)

    def name_owner(self, name: str) -> str | None:
        return self._names.get(name.lower())

    def group_by_id(self, group_id: str) -> ServerGroup | None:
        return self._by_id.get(group_id)

    def group_by_name(self, name: str) -> ServerGroup | None:
        return _best_group(self._by_name.get(name.lower(), []), name)


def _names_held(dbsession: Session, names: list[str] | None):
    """(id, name) of the servers whose name is one of ``names`` (in any
    case), or of every server."""
    caseless_column = dbsession.get_bind().dialect.name in ("mysql", "mariadb")
    if names is None or not caseless_column:
        yield from dbsession.execute(select(Server.id, Server.name))
        return
    wanted = sorted({name for name in names if name})
    for start in range(0, len(wanted), NAMES_PER_QUERY):
        chunk = wanted[start:start + NAMES_PER_QUERY]
        yield from dbsession.execute(select(Server.id, Server.name).where(Server.name.in_(chunk)))


def _best_group(groups: list[ServerGroup], name: str) -> ServerGroup | None:
    """The group named exactly ``name``, else the one named so in another case."""
    for group in groups:
        if group.name == name:
            return group
    return groups[0] if groups else None


class ServerService:
    """Servers: each change is recorded in the activity log (``activity``:
    ``Services.activity``, acting for whoever asked)."""

    def __init__(self, dbsession: Session, secret_box: SecretBox, activity=None):
        self.dbsession = dbsession
        self.secret_box = secret_box
        self.activity = activity or NoActivity()

    # -- reading -------------------------------------------------------------------
    def get(self, server_id: str) -> Server | None:
        return self.dbsession.get(Server, server_id)

    def by_name(self, name: str) -> Server | None:
        """The server named exactly ``name`` (ServerLookup.name_owner finds
        it in another case)."""
        server = self.dbsession.scalars(select(Server).where(Server.name == name)).first()
        return server if server is not None and server.name == name else None

    def search(self, text: str = "", group: str | None = None) -> Select:
        """Servers ordered by name; ``text`` keeps those whose name, host or
        description contains it; ``group`` a server group's id, or
        :data:`NO_GROUP` for the servers without one."""
        text = cap_search(text)
        stmt = select(Server).order_by(Server.name)
        if text:
            stmt = stmt.where(or_(
                Server.name.contains(text, autoescape=True),
                Server.host.contains(text, autoescape=True),
                Server.description.contains(text, autoescape=True),
            ))
        if group == NO_GROUP:
            stmt = stmt.where(Server.group_id.is_(None))
        elif group:
            stmt = stmt.where(Server.group_id == group)
        return stmt

    def password(self, server: Server) -> str | None:
        """The stored password in clear (for the gateway shell only)."""
        if not server.password_encrypted:
            return None
        return self.secret_box.decrypt(server.password_encrypted)

    # -- checks ----------------------------------------------------------------------
    def validate(self, data: ServerInput, server: Server | None = None, *,
                 lookup: ServerLookup | None = None) -> ServerValues:
        """Check every field of ``data`` (for a new server, or a change to
        ``server``); raise :class:`InvalidServer` with every error found."""
        lookup = lookup or ServerLookup(self.dbsession)
        errors: list[Invalid] = []

        def checked(check, *args):
            try:
                return check(*args)
            except Invalid as error:
                errors.append(error)
                return None

        name = checked(check_name, data.name)
        if name is not None:
            owner = lookup.name_owner(name)
            if owner is not None and (server is None or owner != server.id):
                errors.append(Invalid(f"A server named {name!r} already exists.", "name"))
        host = checked(check_host, data.host)
        port = checked(check_port, data.port)
        remote_user = checked(check_remote_user, data.remote_user)
        auth_method = checked(check_auth_method, data.auth_method)

        password = data.password or ""
        if auth_method == "password":
            has_stored = server is not None and bool(server.password_encrypted)
            if password:
                password = checked(check_password, password)
            elif not has_stored:
                errors.append(Invalid(
                    "A password is required when the gateway logs in with a password.",
                    "password",
                ))
            password = password or None
        elif auth_method == "key" and password:
            errors.append(Invalid(
                "A password is only used with password authentication; leave it empty "
                "for key authentication.", "password",
            ))
            password = None
        else:
            password = None

        group = None
        if data.group_name is not None and data.group_name.strip():
            group = lookup.group_by_name(data.group_name.strip())
            if group is None:
                errors.append(Invalid(
                    f"There is no server group named {data.group_name.strip()!r}; "
                    "create it first or leave the group empty.", "group_id",
                ))
        elif data.group_id:
            group = lookup.group_by_id(data.group_id)
            if group is None:
                errors.append(Invalid(
                    "That server group does not exist (any more); choose another.", "group_id"
                ))
        description = checked(check_description, data.description)

        if errors:
            raise InvalidServer(errors)
        return ServerValues(name=name, host=host, port=port, remote_user=remote_user,
                            auth_method=auth_method, password=password, group=group,
                            description=description)

    # -- changing --------------------------------------------------------------------
    def _apply(self, server: Server, values: ServerValues) -> None:
        server.name = values.name
        server.host = values.host
        server.port = values.port
        server.remote_user = values.remote_user
        server.auth_method = values.auth_method
        server.group = values.group
        server.description = values.description
        if values.auth_method == "key":
            server.password_encrypted = None
        elif values.password is not None:
            server.password_encrypted = self.secret_box.encrypt(values.password)

    def add(self, values: ServerValues) -> Server:
        """Store checked values as a new server (no flush: see :meth:`create`)."""
        server = Server()
        self._apply(server, values)
        self.dbsession.add(server)
        return server

    def new_row(self, values: ServerValues, now: dt.datetime) -> dict:
        """The servers row :meth:`add` would store for checked values, every
        column given: for inserting thousands at once (a CSV import)."""
        password = values.password if values.auth_method == "password" else None
        return {"id": new_uuid(), "name": values.name, "host": values.host, "port": values.port,
                "remote_user": values.remote_user, "auth_method": values.auth_method,
                "password_encrypted": self.secret_box.encrypt(password) if password else None,
                "group_id": values.group.id if values.group is not None else None,
                "description": values.description, "host_key": None,
                "created_at": now, "updated_at": now}

    def create(self, data: ServerInput) -> Server:
        server = self.add(self.validate(data))
        self.dbsession.flush()
        self.activity.record("server.create", server.name)
        return server

    def update(self, server: Server, data: ServerInput) -> Server:
        """Change ``server``. A blank password keeps the stored one; switching
        to key authentication forgets it."""
        old = server.name
        values = self.validate(data, server)
        self._apply(server, values)
        self.dbsession.flush()
        self.activity.record("server.update", server.name, f"renamed from {old}" if old != server.name else "")
        return server

    def dependants(self, server: Server) -> dict[str, int]:
        """What deleting the server would also remove."""
        return {"access rules": self.dbsession.scalar(
            select(func.count()).select_from(AccessRule).where(AccessRule.server_id == server.id)
        )}

    def delete(self, server: Server) -> dict[str, int]:
        """Delete the server and the access rules naming it; returns what
        went, as :meth:`dependants` counts it."""
        gone = self.dependants(server)
        for rule in self.dbsession.scalars(select(AccessRule).where(AccessRule.server_id == server.id)):
            self.dbsession.delete(rule)
        self.dbsession.delete(server)
        self.dbsession.flush()
        self.activity.record("server.delete", server.name,
                             f"{plural(gone['access rules'], 'access rule')} removed")
        return gone

    def export_csv(self) -> str:
        """Every server as CSV text (never a password)."""
        from ezpyr.servers.csvio import export_csv
        text = export_csv(self.dbsession)
        self.activity.record("server.export", "", plural(max(0, len(text.splitlines()) - 1), "server"))
        return text

    def reset_host_key(self, server: Server) -> str | None:
        """Forget the server's pinned host key (see
        :func:`ezpyr.gateway.services.reset_host_key`); the fingerprint that
        was pinned, None (and nothing recorded) when there was none."""
        from ezpyr.gateway.services import reset_host_key
        before = reset_host_key(server)
        if before is not None:
            self.activity.record("servers.host_key_reset", server.name, f"pinned host key {before} forgotten")
        return before


# -- server groups -----------------------------------------------------------------

class ServerGroupService:
    """Server groups; changes are recorded in the activity log."""

    def __init__(self, dbsession: Session, activity=None):
        self.dbsession = dbsession
        self.activity = activity or NoActivity()

    def search(self, text: str = "") -> Select:
        text = cap_search(text)
        stmt = select(ServerGroup).order_by(ServerGroup.name)
        if text:
            stmt = stmt.where(or_(
                ServerGroup.name.contains(text, autoescape=True),
                ServerGroup.description.contains(text, autoescape=True),
            ))
        return stmt

    def all(self) -> list[ServerGroup]:
        return list(self.dbsession.scalars(self.search()))

    def get(self, group_id: str) -> ServerGroup | None:
        return self.dbsession.get(ServerGroup, group_id)

    def server_counts(self, groups: list[ServerGroup]) -> dict[str, int]:
        """Servers in each of ``groups``, by group id."""
        return counts_by(self.dbsession, Server.group_id, [g.id for g in groups])

    def _check(self, name: str, description: str, group: ServerGroup | None = None) -> tuple[str, str]:
        name = (name or "").strip()
        if not name:
            raise Invalid("A name is required.", "name")
        if len(name) > GROUP_NAME_MAX:
            raise Invalid(f"The name must be at most {GROUP_NAME_MAX} characters.", "name")
        if has_control(name):
            raise Invalid("The name must be one line of text.", "name")
        clash = self.dbsession.scalars(
            select(ServerGroup).where(func.lower(ServerGroup.name) == name.lower())
        ).first()
        if clash is not None and clash is not group:
            raise Invalid(f"A server group named {clash.name!r} already exists.", "name")
        return name, check_description(description)

    def create(self, name: str, description: str = "") -> ServerGroup:
        name, description = self._check(name, description)
        group = ServerGroup(name=name, description=description)
        self.dbsession.add(group)
        self.dbsession.flush()
        self.activity.record("server_group.create", group.name)
        return group

    def update(self, group: ServerGroup, name: str, description: str = "") -> ServerGroup:
        old = group.name
        group.name, group.description = self._check(name, description, group)
        self.dbsession.flush()
        self.activity.record("server_group.update", group.name, f"renamed from {old}" if old != group.name else "")
        return group

    def _rules(self, group: ServerGroup):
        return select(AccessRule).where(AccessRule.server_group_id == group.id)

    def _servers(self, group: ServerGroup):
        return select(Server).where(Server.group_id == group.id)

    def dependants(self, group: ServerGroup) -> dict[str, int]:
        """What deleting the group does: servers that lose their group (they
        stay), access rules naming the group (removed)."""
        def count(stmt):
            return self.dbsession.scalar(select(func.count()).select_from(stmt.subquery()))
        return {"servers": count(self._servers(group)), "access rules": count(self._rules(group))}

    def delete(self, group: ServerGroup) -> dict[str, int]:
        """Delete the group; its servers stay, without a group; access rules
        naming it go. Returns what it did, as :meth:`dependants` counts it."""
        done = {"servers": 0, "access rules": 0}
        for server in self.dbsession.scalars(self._servers(group)):
            server.group = None
            done["servers"] += 1
        for rule in self.dbsession.scalars(self._rules(group)):
            self.dbsession.delete(rule)
            done["access rules"] += 1
        self.dbsession.flush()
        self.dbsession.delete(group)
        self.dbsession.flush()
        self.activity.record("server_group.delete", group.name,
                             f"{plural(done['servers'], 'server')} left without a group, "
                             f"{plural(done['access rules'], 'access rule')} removed")
        return done

