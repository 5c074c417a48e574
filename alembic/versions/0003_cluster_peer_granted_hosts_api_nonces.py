"""cluster peer granted hosts api nonces

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 08:08:48.742851
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_nonces',
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('seen_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.PrimaryKeyConstraint('nonce', name=op.f('pk_api_nonces'))
    )
    with op.batch_alter_table('api_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_nonces_seen_at'), ['seen_at'], unique=False)

    op.create_table('cluster_peer',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('broker_url', sa.Text(), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('link', sa.String(length=16), nullable=False),
    sa.Column('reachable', sa.Boolean(), nullable=False),
    sa.Column('last_heartbeat_at', ezpyr.meta.Timestamp(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('peer_vector', sa.Text(), nullable=False),
    sa.Column('backlog_unsent', sa.Integer(), nullable=False),
    sa.Column('backlog_queued', sa.Integer(), nullable=False),
    sa.Column('queue_consumers', sa.Integer(), nullable=False),
    sa.Column('lag_seconds', sa.Float(), nullable=True),
    sa.Column('applier_state', sa.Text(), nullable=False),
    sa.Column('updated_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cluster_peer'))
    )
    op.create_table('granted_hosts',
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('granted_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_granted_hosts'))
    )


def downgrade():
    op.drop_table('granted_hosts')
    op.drop_table('cluster_peer')
    with op.batch_alter_table('api_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_nonces_seen_at'))

    op.drop_table('api_nonces')
