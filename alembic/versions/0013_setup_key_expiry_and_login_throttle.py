"""setup keys expire and work once; sign-in failures counted per address, per
account and in all (login_throttle replaces login_failures)

Revision ID: 0013
Revises: 0016
Create Date: 2026-11-25 18:45:00
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0013'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('secondary_setup', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', ezpyr.meta.Timestamp(), nullable=True))
        batch_op.add_column(sa.Column('used_at', ezpyr.meta.Timestamp(), nullable=True))
    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle'))
    )
    op.drop_table('login_failures')


def downgrade():
    op.create_table('login_failures',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', ezpyr.meta.Timestamp(), nullable=True),
    sa.Column('locked_until', ezpyr.meta.Timestamp(), nullable=True),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_login_failures'))
    )
    op.drop_table('login_throttle')
    with op.batch_alter_table('secondary_setup', schema=None) as batch_op:
        batch_op.drop_column('used_at')
        batch_op.drop_column('expires_at')
