"""change messages are signed: refusals recorded, the cluster secret rotates

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-25 18:45:00
"""
from alembic import op
import sqlalchemy as sa

from ezpyr.meta import LongText, Timestamp


revision = '0014'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'refused_changes',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('refused_at', Timestamp(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refused_changes')),
    )
    with op.batch_alter_table('refused_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refused_changes_refused_at'), ['refused_at'], unique=False)
    with op.batch_alter_table('cluster_peer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_secret_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('signed_before_switch', LongText, nullable=True))


def downgrade():
    with op.batch_alter_table('cluster_peer', schema=None) as batch_op:
        batch_op.drop_column('signed_before_switch')
        batch_op.drop_column('previous_secret_encrypted')
        batch_op.drop_column('next_secret_encrypted')
    with op.batch_alter_table('refused_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refused_changes_refused_at'))
    op.drop_table('refused_changes')
