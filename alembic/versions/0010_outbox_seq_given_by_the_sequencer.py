"""outbox entries are numbered after they commit: seq may be empty until then

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 16:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=True)


def downgrade():
    op.execute("DELETE FROM outbox WHERE seq IS NULL")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
