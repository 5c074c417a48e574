"""secondary setup

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 08:40:10.820576
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('secondary_setup',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('primary_address', sa.String(length=255), nullable=False),
    sa.Column('setup_key_encrypted', sa.Text(), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_secondary_setup'))
    )


def downgrade():
    op.drop_table('secondary_setup')
