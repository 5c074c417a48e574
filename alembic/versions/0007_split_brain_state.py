"""split brain state, and the origin's vector on each outbox entry

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 08:43:19.329622
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cluster_peer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('split_brain_since', ezpyr.meta.Timestamp(), nullable=True))
        batch_op.add_column(sa.Column('split_brain_detail', sa.Text(), nullable=False, server_default=''))



    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context', sa.Text(), nullable=False, server_default='{}'))


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('context')
    with op.batch_alter_table('cluster_peer', schema=None) as batch_op:
        batch_op.drop_column('split_brain_detail')
        batch_op.drop_column('split_brain_since')

