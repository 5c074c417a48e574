"""outbox: the unsent entries indexed in stream order (sent_at, origin, epoch, seq)

The relay reads the unsent entries of each stream in seq order. With an
index on sent_at alone that needed a sort, and MariaDB preferred walking
the stream index through every sent entry kept (100,000 by default).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 05:10:00
"""
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_unsent', ['sent_at', 'origin', 'epoch', 'seq'], unique=False)
        batch_op.drop_index(batch_op.f('ix_outbox_sent_at'))


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_sent_at'), ['sent_at'], unique=False)
        batch_op.drop_index('ix_outbox_unsent')
