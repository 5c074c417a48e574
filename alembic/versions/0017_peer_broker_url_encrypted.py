"""the other node's broker URL (it holds the broker's password) stored
encrypted with this node's secret key

Revision ID: 0017
Revises: 0010
Create Date: 2026-11-25 18:40:00
"""
from alembic import context, op
import sqlalchemy as sa


revision = '0017'
down_revision = '0010'
branch_labels = None
depends_on = None

PEER = sa.table('cluster_peer', sa.column('id', sa.String), sa.column('broker_url', sa.Text),
                sa.column('broker_url_encrypted', sa.Text))


def _secret_box():
    """This node's box, from the config alembic runs with."""
    from pyramid.paster import get_appsettings

    from ezpyr.secretbox import secret_box_from_settings
    name = context.config.config_file_name
    return secret_box_from_settings(get_appsettings(name) if name else {})


def _rewrite(read, write, transform):
    conn = op.get_bind()
    rows = conn.execute(sa.select(PEER.c.id, PEER.c[read])).all()
    if not rows:
        return
    box = _secret_box()
    for peer_id, value in rows:
        conn.execute(PEER.update().where(PEER.c.id == peer_id)
                     .values({write: transform(box, value or "")}))


def upgrade():
    with op.batch_alter_table('cluster_peer') as batch:
        batch.add_column(sa.Column('broker_url_encrypted', sa.Text(), nullable=False, server_default=''))
    _rewrite('broker_url', 'broker_url_encrypted', lambda box, url: box.encrypt(url))
    with op.batch_alter_table('cluster_peer') as batch:
        batch.drop_column('broker_url')


def downgrade():
    with op.batch_alter_table('cluster_peer') as batch:
        batch.add_column(sa.Column('broker_url', sa.Text(), nullable=False, server_default=''))
    _rewrite('broker_url_encrypted', 'broker_url', lambda box, token: box.decrypt(token) if token else '')
    with op.batch_alter_table('cluster_peer') as batch:
        batch.drop_column('broker_url_encrypted')
