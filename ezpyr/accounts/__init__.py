"""The users' system accounts on both nodes: the account agent, the tasks
that follow user changes, pinned host keys, reconcile."""


def includeme(config):
    config.add_route("accounts.reset_fingerprint", "/cluster/accounts/reset-fingerprint/{node}")
    config.add_route("accounts.reconcile", "/cluster/accounts/reconcile")
    config.add_request_method(
        "ezpyr.accounts.views.account_summary", "account_summary", reify=True)
