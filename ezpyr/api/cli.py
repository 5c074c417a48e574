"""``ezpyr-admin CONFIG tokens …``: the API tokens page on the command line
(registered into ezpyr-admin's parser by :func:`register`)."""
from __future__ import annotations

from ezpyr.users.schemas import TokenOut
from ezpyr.validation import Invalid

token_data = TokenOut.of


def tokens_list(a, args):
    from ezpyr.cli import Done, table
    rows = [token_data(t) for t in a.services.tokens.all()]
    text = table(["name", "owner", "starts with", "rights", "expires"],
                 [[r["name"], r["owner"], r["prefix"] + "…", "read-only" if r["read_only"] else "read-write",
                   (r["expires_at"][:19] if r["expires_at"] else "never") + (" (expired)" if r["expired"] else "")]
                  for r in rows],
                 "no API tokens")
    return Done(text, {"tokens": rows})


def tokens_add(a, args):
    from ezpyr.cli import Done
    owner = a.user(args.owner)
    token, secret = a.services.tokens.create(args.name, owner, read_only=not args.read_write,
                                             expires_days=args.expires_days)
    message = (f"made token {token.name} for {owner.username} "
               f"({'read-only' if token.read_only else 'read-write'}); it is shown this once:\n{secret}")
    return Done(message, {"token": token_data(token), "secret": secret})


def tokens_revoke(a, args):
    from ezpyr.cli import Done
    service = a.services.tokens
    token = service.by_name((args.name or "").strip())
    if token is None:
        raise Invalid(f"There is no token named {args.name!r}; ezpyr-admin CONFIG tokens list shows them.")
    name = token.name
    service.revoke(token)
    return Done(f"revoked token {name}", {"revoked": name})


def register(cli) -> None:
    tokens = cli.area("tokens", "API tokens (the panel's API tokens page)")
    cli.action(tokens, "list", tokens_list, "every API token (never its secret)")
    p = cli.action(tokens, "add", tokens_add, "make a token; its secret is printed once", does="token.create")
    p.add_argument("name", help="what it is for, e.g. 'inventory sync'")
    p.add_argument("--owner", required=True, metavar="USERNAME",
                   help="the user whose rights it has (at most)")
    p.add_argument("--read-write", action="store_true", help="may change things (default: read-only)")
    p.add_argument("--expires-days", metavar="DAYS", help="1 to 3650 (default: never)")
    p = cli.action(tokens, "revoke", tokens_revoke, "revoke a token: it stops working on both nodes",
                   does="token.revoke")
    p.add_argument("name")
