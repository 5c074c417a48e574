"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 07:59:04.116004
"""
from alembic import op
import sqlalchemy as sa
import ezpyr.meta


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('activity_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=False),
    sa.Column('node_name', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_log'))
    )
    with op.batch_alter_table('activity_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_log_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_log_username'), ['username'], unique=False)

    op.create_table('gateway_keys',
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('private_key_encrypted', sa.Text(), nullable=False),
    sa.Column('fingerprint', sa.String(length=100), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_keys'))
    )
    op.create_table('login_failures',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', ezpyr.meta.Timestamp(), nullable=True),
    sa.Column('locked_until', ezpyr.meta.Timestamp(), nullable=True),
    sa.PrimaryKeyConstraint('username', name=op.f('pk_login_failures'))
    )
    op.create_table('node_identity',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node_identity'))
    )
    op.create_table('server_groups',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_server_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_server_groups_name'))
    )
    op.create_table('settings',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settings')),
    sa.UniqueConstraint('name', name=op.f('uq_settings_name'))
    )
    op.create_table('user_groups',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_user_groups_name'))
    )
    op.create_table('command_rules',
    sa.Column('user_group_id', sa.String(length=36), nullable=False),
    sa.Column('pattern', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['user_group_id'], ['user_groups.id'], name=op.f('fk_command_rules_user_group_id_user_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_command_rules'))
    )
    with op.batch_alter_table('command_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_command_rules_user_group_id'), ['user_group_id'], unique=False)

    op.create_table('servers',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('remote_user', sa.String(length=32), nullable=False),
    sa.Column('auth_method', sa.String(length=16), nullable=False),
    sa.Column('password_encrypted', sa.Text(), nullable=True),
    sa.Column('group_id', sa.String(length=36), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('updated_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['server_groups.id'], name=op.f('fk_servers_group_id_server_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_servers')),
    sa.UniqueConstraint('name', name=op.f('uq_servers_name'))
    )
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_servers_group_id'), ['group_id'], unique=False)

    op.create_table('users',
    sa.Column('username', sa.String(length=32), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('group_id', sa.String(length=36), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('auth_stamp', sa.String(length=36), nullable=False),
    sa.Column('suspended', sa.Boolean(), nullable=False),
    sa.Column('totp_secret', sa.Text(), nullable=True),
    sa.Column('totp_enabled', sa.Boolean(), nullable=False),
    sa.Column('password_changed_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('updated_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['user_groups.id'], name=op.f('fk_users_group_id_user_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_group_id'), ['group_id'], unique=False)

    op.create_table('access_rules',
    sa.Column('user_group_id', sa.String(length=36), nullable=True),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('server_group_id', sa.String(length=36), nullable=True),
    sa.Column('server_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.CheckConstraint('(server_group_id IS NULL) <> (server_id IS NULL)', name=op.f('ck_access_rules_one_target')),
    sa.CheckConstraint('(user_group_id IS NULL) <> (user_id IS NULL)', name=op.f('ck_access_rules_one_subject')),
    sa.ForeignKeyConstraint(['server_group_id'], ['server_groups.id'], name=op.f('fk_access_rules_server_group_id_server_groups')),
    sa.ForeignKeyConstraint(['server_id'], ['servers.id'], name=op.f('fk_access_rules_server_id_servers')),
    sa.ForeignKeyConstraint(['user_group_id'], ['user_groups.id'], name=op.f('fk_access_rules_user_group_id_user_groups')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_access_rules_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_rules'))
    )
    with op.batch_alter_table('access_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_rules_server_group_id'), ['server_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_rules_server_id'), ['server_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_rules_user_group_id'), ['user_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_rules_user_id'), ['user_id'], unique=False)

    op.create_table('user_keys',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_type', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('fingerprint', sa.String(length=100), nullable=False),
    sa.Column('created_at', ezpyr.meta.Timestamp(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_keys_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_keys')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_user_keys_fingerprint'))
    )
    with op.batch_alter_table('user_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_keys_user_id'), ['user_id'], unique=False)



def downgrade():
    op.drop_table('user_keys')
    op.drop_table('access_rules')
    op.drop_table('users')
    op.drop_table('servers')
    op.drop_table('command_rules')
    op.drop_table('user_groups')
    op.drop_table('settings')
    op.drop_table('server_groups')
    op.drop_table('node_identity')
    op.drop_table('login_failures')
    op.drop_table('gateway_keys')
    op.drop_table('activity_log')
