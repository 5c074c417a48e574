"""Rows the access tests build: servers, server groups and rules."""
from __future__ import annotations

from ezpyr.servers.models import Server, ServerGroup


def make_server_group(dbsession, name="web"):
    group = ServerGroup(name=name)
    dbsession.add(group)
    dbsession.commit()
    return group


def make_server(dbsession, name="web1", *, group=None, host=None, port=22, remote_user="root"):
    server = Server(name=name, host=host or f"{name}.example.net", port=port,
                    remote_user=remote_user, group=group)
    dbsession.add(server)
    dbsession.commit()
    return server
