"""The API's system accounts (the cluster page's account section): the same
service as the panel's buttons and ``ezpyr-accounts``. Account work is the
master's: a slave refuses Reconcile and Reset fingerprint (409), as its
panel does."""
from __future__ import annotations

from ezpyr.accounts.schemas import AccountsOut, ResetFingerprintIn, ResetFingerprintOut
from ezpyr.api.framework import body_of, endpoint, route
from ezpyr.jobs.api import LOCATION, started
from ezpyr.jobs.schemas import JobStartedOut

ACCOUNTS = route("api.accounts", "/accounts")
RECONCILE = route("api.accounts_reconcile", "/accounts/reconcile")
RESET_FINGERPRINT = route("api.accounts_reset_fingerprint", "/accounts/reset-fingerprint")


@endpoint(ACCOUNTS, "GET", "The provisioning account, and per node its pinned host key and waiting tasks",
          response=AccountsOut, tag="accounts")
def accounts(request):
    return AccountsOut.model_validate(request.services.account_actions.status()).model_dump(mode="json")


@endpoint(RECONCILE, "POST", "Reconcile: make each node's managed accounts match the users table (a job; one "
          "asked for while one runs follows the running one)", response=JobStartedOut, status=202,
          headers=LOCATION, write=True, does="accounts.reconcile", tag="accounts")
def reconcile(request):
    return started(request, request.services.account_actions.start_reconcile())


@endpoint(RESET_FINGERPRINT, "POST", "Pin the host key a node presents now, after it changed on purpose (a "
          "reinstall): its waiting account tasks go on", body=ResetFingerprintIn, response=ResetFingerprintOut,
          write=True, does="accounts.reset_fingerprint", tag="accounts")
def reset_fingerprint(request):
    data = body_of(request, ResetFingerprintIn)
    return request.services.account_actions.reset_fingerprint(data.node, data.presented)
