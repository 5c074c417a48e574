"""LONGTEXT on MariaDB for outbox entries, job results and the peer's vector

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 09:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COLUMNS = (("outbox", "changes", None), ("outbox", "context", "'{}'"), ("jobs", "result", "''"),
           ("cluster_peer", "peer_vector", "'{}'"))


def upgrade():
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return  # SQLite's TEXT has no such limit
    for table, column, default in COLUMNS:
        op.alter_column(table, column, type_=mysql.LONGTEXT(), existing_nullable=False,
                        existing_server_default=sa.text(default) if default else None)


def downgrade():
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, column, default in COLUMNS:
        op.alter_column(table, column, type_=sa.Text(), existing_nullable=False,
                        existing_server_default=sa.text(default) if default else None)
