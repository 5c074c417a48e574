"""The gateway key page and the public key download."""
import pytest

from ezpyr.gateway.services import GatewayKeyService, openssh_fingerprint


@pytest.fixture
def gateway_key(dbsession, secret_box):
    key = GatewayKeyService(dbsession, secret_box).generate()
    dbsession.commit()
    return key


def test_page_shows_the_public_key_ready_to_paste(admin_app, gateway_key, secret_box, dbsession):
    page = admin_app.get("/gateway-key")
    pre = page.html.select_one("pre.public-key").get_text()
    assert pre == gateway_key.public_key
    assert pre.startswith("ssh-ed25519 ") and pre.endswith(" ezpyr-gateway") and "\n" not in pre
    assert gateway_key.fingerprint in page
    assert gateway_key.fingerprint == openssh_fingerprint(pre)
    assert gateway_key.created_at.strftime("%Y-%m-%d %H:%M:%S") in page
    assert "authorized_keys" in page
    private = GatewayKeyService(dbsession, secret_box).private_key_pem(gateway_key)
    for secret in (private, gateway_key.private_key_encrypted, "PRIVATE KEY"):
        assert secret not in page.text


def test_download_is_the_public_key_only(admin_app, gateway_key):
    res = admin_app.get("/gateway-key.pub")
    assert res.content_type == "text/plain"
    assert res.headers["Content-Disposition"] == 'attachment; filename="ezpyr-gateway.pub"'
    assert res.text == gateway_key.public_key + "\n"
    assert "PRIVATE" not in res.text


def test_newest_key_is_shown(admin_app, dbsession, secret_box, gateway_key):
    newer = GatewayKeyService(dbsession, secret_box).generate(comment="second")
    dbsession.commit()
    assert newer.public_key in admin_app.get("/gateway-key")
    assert admin_app.get("/gateway-key.pub").text == newer.public_key + "\n"


def test_without_a_key_the_page_says_how_to_fix_it(admin_app):
    page = admin_app.get("/gateway-key")
    assert "There is no gateway key yet" in page and "ezpyr-init" in page
    assert page.html.select_one("pre.public-key") is None
    res = admin_app.get("/gateway-key.pub", status=404)
    assert "ezpyr-init" in res


@pytest.mark.parametrize("url", ["/gateway-key", "/gateway-key.pub"])
def test_anonymous_is_sent_to_sign_in(testapp, gateway_key, url):
    res = testapp.get(url, status=303)
    assert "/login" in res.location


@pytest.mark.parametrize("url", ["/gateway-key", "/gateway-key.pub"])
def test_non_admin_is_refused(user_app, gateway_key, url):
    res = user_app.get(url, status=403)
    assert gateway_key.public_key not in res.text
