"""server names compare without case on MariaDB: the unique index refuses
"Web1" beside "web1", and the panel's name check is an index seek

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-25 18:55:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return  # SQLite keeps comparing by lower-casing both sides
    clashes = [row[0] for row in bind.execute(sa.text(
        "SELECT MIN(name) FROM servers GROUP BY LOWER(name) HAVING COUNT(*) > 1"))]
    if clashes:
        raise RuntimeError("servers whose names differ only in case must be renamed first: "
                           + ", ".join(sorted(clashes)))
    op.alter_column('servers', 'name', existing_type=sa.String(100), existing_nullable=False,
                    type_=mysql.VARCHAR(100, collation='utf8mb4_general_ci'))


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    op.alter_column('servers', 'name', existing_type=mysql.VARCHAR(100, collation='utf8mb4_general_ci'),
                    existing_nullable=False, type_=mysql.VARCHAR(100, collation='utf8mb4_bin'))
