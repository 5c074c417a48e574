"""API tokens (replicated)

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25 19:10:00
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'api_tokens',
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('owner_id', sa.String(length=36), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('read_only', sa.Boolean(), nullable=False),
        sa.Column('expires_at', ezpyr.meta.Timestamp(), nullable=True),
        sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_api_tokens_owner_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('name', name=op.f('uq_api_tokens_name')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_api_tokens_secret_hash')),
    )
    op.create_index(op.f('ix_api_tokens_owner_id'), 'api_tokens', ['owner_id'], unique=False)


def downgrade():
    # the table's index goes with it (MariaDB will not drop an index its
    # foreign key needs on its own)
    op.drop_table('api_tokens')
