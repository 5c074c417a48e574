"""ended sessions and totp last steps

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 08:39:16.287860
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('ended_sessions',
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('until', ezpyr.meta.Timestamp(), nullable=False),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_ended_sessions'))
    )
    with op.batch_alter_table('ended_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ended_sessions_until'), ['until'], unique=False)

    op.create_table('totp_last_steps',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_totp_last_steps'))
    )


def downgrade():
    op.drop_table('totp_last_steps')
    with op.batch_alter_table('ended_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ended_sessions_until'))

    op.drop_table('ended_sessions')
