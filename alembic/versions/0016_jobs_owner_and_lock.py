"""jobs: the process that runs each one, one cluster action at a time, refusals told apart

Revision ID: 0016
Revises: 0012
Create Date: 2026-11-25 18:40:00
"""
from alembic import op
import sqlalchemy as sa

import ezpyr.meta


revision = '0016'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('owner', sa.String(length=128), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('refused', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('started_at', ezpyr.meta.Timestamp(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_jobs_lock'), ['lock'])


def downgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_jobs_lock'), type_='unique')
        batch_op.drop_column('started_at')
        batch_op.drop_column('refused')
        batch_op.drop_column('owner')
        batch_op.drop_column('lock')
