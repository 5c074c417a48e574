"""gateway sessions (node-local) and the servers' pinned host keys (replicated)

Revision ID: 0012
Revises: 0014
Create Date: 2026-11-25 18:30:00
"""
from alembic import op
import sqlalchemy as sa

from ezpyr.meta import Timestamp


revision = '0012'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host_key', sa.Text(), nullable=True))
    op.create_table(
        'gateway_sessions',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('username', sa.String(length=32), nullable=False),
        sa.Column('client_address', sa.String(length=100), nullable=False),
        sa.Column('server_name', sa.String(length=100), nullable=False),
        sa.Column('server_address', sa.String(length=300), nullable=False),
        sa.Column('command', sa.Text(), nullable=False),
        sa.Column('started_at', Timestamp(), nullable=False),
        sa.Column('ended_at', Timestamp(), nullable=True),
        sa.Column('bytes_in', sa.BigInteger(), nullable=False),
        sa.Column('bytes_out', sa.BigInteger(), nullable=False),
        sa.Column('exit_status', sa.Integer(), nullable=True),
        sa.Column('guard_refusals', sa.Integer(), nullable=False),
        sa.Column('recording', sa.String(length=255), nullable=False),
        sa.Column('end_reason', sa.String(length=255), nullable=False),
        sa.Column('terminate_requested', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_sessions')),
    )
    with op.batch_alter_table('gateway_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateway_sessions_username'), ['username'], unique=False)
        batch_op.create_index(batch_op.f('ix_gateway_sessions_server_name'), ['server_name'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_gateway_sessions_started_at'), ['started_at'],
                              unique=False)


def downgrade():
    op.drop_table('gateway_sessions')
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_column('host_key')
