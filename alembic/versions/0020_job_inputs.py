"""job inputs: the file a job works on (a CSV import), kept until the job takes it

Revision ID: 0020
Revises: 0015
Create Date: 2026-11-26 10:00:00
"""
from alembic import op
import sqlalchemy as sa

import ezpyr.meta


revision = '0020'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_inputs',
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('part', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('data', ezpyr.meta.LongText, nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_inputs_job_id_jobs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'part', name=op.f('pk_job_inputs')),
    )


def downgrade():
    op.drop_table('job_inputs')
