import pytest

from ezpyr.api.tokens import TokenService
from tests.cluster.conftest import this_node  # noqa: F401 - a fixture
from tests.factories import make_admin, make_user


class Tokens:
    """Bearer headers for an admin's read-write and read-only tokens and a
    plain user's token."""

    def __init__(self, dbsession, passwords):
        admin = make_admin(dbsession, passwords)
        user = make_user(dbsession, passwords, "plainuser")
        service = TokenService(dbsession)
        self.admin_token, secret = service.create("script-rw", admin, read_only=False)
        self.rw = {"Authorization": f"Bearer {secret}"}
        _, secret = service.create("script-ro", admin, read_only=True)
        self.ro = {"Authorization": f"Bearer {secret}"}
        _, secret = service.create("user-token", user, read_only=False)
        self.user = {"Authorization": f"Bearer {secret}"}
        dbsession.commit()
        self.admin, self.plain_user = admin, user


@pytest.fixture
def tokens(dbsession, passwords, this_node):
    return Tokens(dbsession, passwords)
