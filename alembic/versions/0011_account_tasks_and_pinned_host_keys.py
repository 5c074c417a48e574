"""system accounts: the account tasks waiting per node, pinned host keys

Revision ID: 0011
Revises: 0019
Create Date: 2026-11-25 18:30:00
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0011'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'account_tasks',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('target', sa.String(length=8), nullable=False),
        sa.Column('username', sa.String(length=32), nullable=False),
        sa.Column('request', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
        sa.Column('updated_at', ezpyr.meta.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_account_tasks')),
    )
    op.create_index('ix_account_tasks_target_state_id', 'account_tasks', ['target', 'state', 'id'])
    op.create_index(op.f('ix_account_tasks_username'), 'account_tasks', ['username'])
    op.create_table(
        'pinned_host_keys',
        sa.Column('target', sa.String(length=8), nullable=False),
        sa.Column('address', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=100), nullable=False),
        sa.Column('presented', sa.String(length=100), nullable=False),
        sa.Column('pinned_at', ezpyr.meta.Timestamp(), nullable=False),
        sa.Column('presented_at', ezpyr.meta.Timestamp(), nullable=True),
        sa.PrimaryKeyConstraint('target', name=op.f('pk_pinned_host_keys')),
    )


def downgrade():
    op.drop_table('pinned_host_keys')
    op.drop_index(op.f('ix_account_tasks_username'), table_name='account_tasks')
    op.drop_index('ix_account_tasks_target_state_id', table_name='account_tasks')
    op.drop_table('account_tasks')
