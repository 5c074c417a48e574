"""Every service of one unit of work, made in one place.

A unit of work is a web request, an API call or an ``ezpyr-admin`` command:
one database session and one :class:`Actor`. The panel reaches the services
as ``request.services``, the API as the same, the command line as
``Admin.services``; none of them constructs a service itself (a test walks
the faces and fails when one does). Services record their own activity
through :attr:`Services.activity`, so the panel, the API and the command
line name each change alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

from ezpyr.activity.services import ActivityLog

_ACTOR = object()


@dataclass(frozen=True)
class Actor:
    """Who acts: the activity log's user, name and address, and how the
    change came (``via``: e.g. an API token's name)."""

    username: str
    remote_addr: str = ""
    user: Any = None
    via: str = ""

    @classmethod
    def cli(cls) -> "Actor":
        return cls(username="cli", remote_addr="cli")


class Activity:
    """The node's activity log, bound to one actor."""

    def __init__(self, log: ActivityLog, actor: Callable[[], Actor]):
        self.log = log
        self._actor = actor

    @property
    def actor(self) -> Actor:
        return self._actor()

    def record(self, action: str, target: str = "", details: str = "", *, user=_ACTOR,
               username: str | None = None):
        """``user`` and ``username`` override the actor (an attempt by
        someone not signed in names the username they typed)."""
        actor = self.actor
        details = "; ".join(part for part in (details, actor.via) if part)
        if user is _ACTOR:
            user = actor.user
            username = actor.username if username is None else username
        return self.log.record(action, target, details, user=user, username=username,
                               remote_addr=actor.remote_addr)


def _value(source):
    return source() if callable(source) else source


class Services:
    """The services of one unit of work. ``secret_box``, ``passwords`` and
    ``actor`` may be given as callables: they are then made on first use
    (a command that touches no secret never reads the key file)."""

    def __init__(self, dbsession, *, settings: dict, actor, secret_box=None, passwords=None):
        self.dbsession = dbsession
        self.settings = settings
        self._actor = actor
        self._secret_box = secret_box
        self._passwords = passwords

    def on(self, dbsession) -> "Services":
        """The same actor's services on another session (work that commits
        in a transaction of its own)."""
        return Services(dbsession, settings=self.settings, actor=self._actor,
                        secret_box=self._secret_box, passwords=self._passwords)

    # -- what the services share -------------------------------------------------------
    @property
    def actor(self) -> Actor:
        """Asked afresh each time: a request's user may sign in or out
        between two entries."""
        return _value(self._actor)

    @cached_property
    def secret_box(self):
        return _value(self._secret_box)

    @cached_property
    def passwords(self):
        if self._passwords is None:
            from ezpyr.passwords import Passwords
            return Passwords.from_settings(self.settings)
        return _value(self._passwords)

    @property
    def node_name(self) -> str:
        return self.settings.get("ezpyr.node_name", "")

    @cached_property
    def activity(self) -> Activity:
        return Activity(ActivityLog(self.dbsession, self.node_name), lambda: self.actor)

    # -- users -------------------------------------------------------------------------
    @cached_property
    def users(self):
        from ezpyr.users.services import UserService
        return UserService(self.dbsession, self.passwords, lambda: self.panel_settings, self.activity)

    @cached_property
    def user_groups(self):
        from ezpyr.users.groups import UserGroupService
        return UserGroupService(self.dbsession, self.activity)

    @cached_property
    def user_keys(self):
        from ezpyr.users.keys import UserKeyService
        return UserKeyService(self.dbsession, self.activity)

    @cached_property
    def auth(self):
        from ezpyr.auth.services import AuthService
        return AuthService(self.dbsession, self.passwords, lambda: self.panel_settings, self.activity)

    @cached_property
    def totp(self):
        from ezpyr.auth.totp import TotpService, UsedSteps
        return TotpService(self.dbsession, self.secret_box, UsedSteps(self.dbsession), self.activity)

    @cached_property
    def tokens(self):
        from ezpyr.api.tokens import TokenService
        return TokenService(self.dbsession, self.activity)

    # -- servers and rules ---------------------------------------------------------------
    @cached_property
    def servers(self):
        from ezpyr.servers.services import ServerService
        return ServerService(self.dbsession, self.secret_box, self.activity)

    @cached_property
    def server_groups(self):
        from ezpyr.servers.services import ServerGroupService
        return ServerGroupService(self.dbsession, self.activity)

    @cached_property
    def server_imports(self):
        """The CSV import job, acting for this unit of work's actor."""
        from ezpyr.replication.capture import ACTOR
        from ezpyr.servers.imports import Importer, ServerImports
        actor = self.actor
        outbox_actor = self.dbsession.info.get(ACTOR) or actor.username
        importer = Importer(username=actor.username, remote_addr=actor.remote_addr,
                            actor=outbox_actor() if callable(outbox_actor) else outbox_actor,
                            user_id=actor.user.id if actor.user is not None else None, via=actor.via)
        return ServerImports(self.dbsession, self.secret_box, self.node_name, importer)

    @cached_property
    def server_lookup(self):
        from ezpyr.servers.services import ServerLookup
        return ServerLookup(self.dbsession)

    @cached_property
    def access(self):
        from ezpyr.access.services import AccessService
        return AccessService(self.dbsession, self.activity)

    @cached_property
    def guard(self):
        from ezpyr.guard.services import GuardService
        return GuardService(self.dbsession, self.activity)

    @cached_property
    def sessions(self):
        from ezpyr.gateway.sessions import SessionLog
        return SessionLog(self.dbsession, self.activity)

    @cached_property
    def gateway_keys(self):
        from ezpyr.gateway.services import GatewayKeyService
        return GatewayKeyService(self.dbsession, self.secret_box)

    # -- the node ------------------------------------------------------------------------
    @cached_property
    def settings_service(self):
        from ezpyr.settings.services import SettingsService
        return SettingsService(self.dbsession, self.activity)

    @cached_property
    def panel_settings(self):
        """The panel-wide settings, read once per unit of work."""
        return self.settings_service.current()

    @cached_property
    def jobs(self):
        from ezpyr.jobs.services import JobService
        return JobService(self.dbsession)

    @cached_property
    def cluster(self):
        from ezpyr.cluster.services import ClusterService
        return ClusterService(self.dbsession)

    @cached_property
    def cluster_actions(self):
        from ezpyr.cluster.actions import ClusterActions
        return ClusterActions(self.dbsession, self.secret_box, self.settings, self.actor.username,
                              self.activity)

    @cached_property
    def cluster_setup(self):
        from ezpyr.cluster.setup import SetupService
        return SetupService(self.dbsession, self.secret_box)

    @cached_property
    def account_tasks(self):
        from ezpyr.accounts.tasks import AccountTaskService
        return AccountTaskService(self.dbsession)

    @cached_property
    def account_actions(self):
        from ezpyr.accounts.actions import AccountActions
        return AccountActions(self.dbsession, self.settings, self.actor.username, self.activity)

    @cached_property
    def home(self):
        from ezpyr.home.services import HomeService
        return HomeService(self.dbsession)


def request_actor(request) -> Actor:
    """The signed-in user (or the API token's owner) at the request's
    socket address (or the trusted proxy's word for it; never
    X-Forwarded-For as the client sent it)."""
    user = request.authenticated_user
    token = request.environ.get("ezpyr.api_token")
    return Actor(username=user.username if user is not None else "", user=user,
                 remote_addr=request.remote_addr or "",
                 via=f"via API token {token.name}" if token is not None else "")


def request_services(request) -> Services:
    """``request.services``."""
    return Services(request.dbsession, settings=request.registry.settings,
                    actor=lambda: request_actor(request),
                    secret_box=lambda: request.secret_box, passwords=lambda: request.passwords)


def includeme(config):
    config.add_request_method(request_services, "services", reify=True)
