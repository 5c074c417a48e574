"""the worker's own state: its heartbeat and what its relay is doing

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 16:00:00
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'worker_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', ezpyr.meta.Timestamp(), nullable=False),
        sa.Column('heartbeat_at', ezpyr.meta.Timestamp(), nullable=False),
        sa.Column('stopped_at', ezpyr.meta.Timestamp(), nullable=True),
        sa.Column('relay_state', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_state')),
    )


def downgrade():
    op.drop_table('worker_state')
