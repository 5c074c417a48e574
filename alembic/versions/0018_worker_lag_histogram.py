"""the worker's lag histogram, read by /metrics

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('worker_state') as batch:
        batch.add_column(sa.Column('lag_histogram', sa.Text(), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('worker_state') as batch:
        batch.drop_column('lag_histogram')
