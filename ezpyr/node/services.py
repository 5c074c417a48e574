"""This node's identity."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ezpyr.node.models import NodeIdentity


class NodeService:
    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    def identity(self) -> NodeIdentity | None:
        return self.dbsession.scalars(select(NodeIdentity)).first()

    def create(self, name: str, address: str) -> NodeIdentity:
        node = NodeIdentity(name=name, address=address, role="standalone", epoch=1)
        self.dbsession.add(node)
        self.dbsession.flush()
        return node
