"""What every console script opens: the config's settings, the database,
the secret box."""
from __future__ import annotations

from contextlib import contextmanager

import transaction
from pyramid.paster import get_appsettings, setup_logging

from ezpyr.database import make_engine, make_session_factory, tm_session
from ezpyr.logs import set_node_name
from ezpyr.replication.schema import use_config
from ezpyr.secretbox import secret_box_from_settings


class NodeEnv:
    def __init__(self, config_uri: str, *, logging: bool = True):
        if logging:
            setup_logging(config_uri)
        self.config_uri = config_uri
        self.settings = get_appsettings(config_uri)
        set_node_name(self.settings.get("ezpyr.node_name", ""))
        use_config(config_uri)
        self.engine = make_engine(self.settings)
        self.session_factory = make_session_factory(self.engine)

    @property
    def secret_box(self):
        return secret_box_from_settings(self.settings)

    @contextmanager
    def session(self, actor: str = "cli"):
        """A session in its own transaction: committed when the block ends,
        rolled back when it raises."""
        from ezpyr.replication.capture import ACTOR

        tm = transaction.TransactionManager(explicit=True)
        with tm:
            dbsession = tm_session(self.session_factory, tm)
            dbsession.info[ACTOR] = actor
            yield dbsession

    def services(self, dbsession):
        """The services of one command's transaction, acting as "cli"."""
        from ezpyr.services import Actor, Services
        return Services(dbsession, settings=self.settings, actor=Actor.cli(),
                        secret_box=lambda: self.secret_box)

    def close(self):
        self.engine.dispose()
