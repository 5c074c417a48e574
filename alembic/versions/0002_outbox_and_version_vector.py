"""outbox and version vector (node-local replication bookkeeping)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 08:20:00
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('origin', sa.String(length=36), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('changes', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('schema_revision', sa.String(length=32), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('sent_at', ezpyr.meta.Timestamp(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('origin', 'epoch', 'seq', name=op.f('uq_outbox_stream_seq'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_sent_at'), ['sent_at'], unique=False)

    op.create_table('version_vector',
    sa.Column('origin', sa.String(length=36), nullable=False),
    sa.Column('epoch', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('origin', 'epoch', name=op.f('pk_version_vector'))
    )


def downgrade():
    op.drop_table('version_vector')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_sent_at'))
    op.drop_table('outbox')
