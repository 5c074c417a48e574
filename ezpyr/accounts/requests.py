"""The account agent's requests: what may be asked of it, checked field by
field. The master checks a request before it sends it, and the agent checks
it again before it runs anything (it trusts nothing that reaches it).

A request is one JSON object:

* ``{"op": "ensure", "username": U, "keys": [K…], "locked": bool}``: make
  the account if it is missing, or change it to match (login shell, locked
  or not, ``authorized_keys`` holding exactly these keys);
* ``{"op": "rename", "from": U, "to": U}``;
* ``{"op": "remove", "username": U}``;
* ``{"op": "list"}``: the accounts ezpyr manages on that node, with their
  keys and whether they are locked;
* ``{"op": "batch", "requests": [R…]}``: up to ``MAX_BATCH`` of the
  requests above (ensure, rename, remove) in one exchange, applied in
  order, answered with one answer per request. Each is checked on its own:
  one that is refused is not run and the others are.

A key is ``type base64`` exactly as the panel stores it: no options and no
comment, so nothing but the key itself reaches ``authorized_keys``.
"""
from __future__ import annotations

import base64
import binascii
import re

from ezpyr.users.keys import KEY_TYPES  # the key types the panel accepts

USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
KEY_RE = re.compile(r"^([a-z0-9-]{1,40}) ([A-Za-z0-9+/]{16,16384}={0,2})$")
MAX_KEYS = 100
MAX_BATCH = 1000
OPS = ("ensure", "rename", "remove", "list", "batch")
IN_BATCH = ("ensure", "rename", "remove")
FIELDS = {
    "ensure": {"op", "username", "keys", "locked"},
    "rename": {"op", "from", "to"},
    "remove": {"op", "username"},
    "list": {"op"},
    "batch": {"op", "requests"},
}


class Refused(ValueError):
    """A request that is not run: the message says which field and why."""


def check_username(value, field: str = "username") -> str:
    if not isinstance(value, str) or not USERNAME_RE.match(value) or "\n" in value:
        raise Refused(f"{field} {_show(value)} is not an account name "
                      "(^[a-z_][a-z0-9_-]{0,31}$): refused, nothing was run")
    return value


def check_key(value) -> str:
    """One public key, ``type base64`` (no options, no comment)."""
    match = KEY_RE.match(value) if isinstance(value, str) and "\n" not in value else None
    if match is None or match.group(1) not in KEY_TYPES:
        raise Refused(f"key {_show(value)} is not a public key line 'type base64' without "
                      "options or comment: refused, nothing was run")
    try:
        blob = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"key {_show(value)} is not valid base64: refused, nothing was run") from None
    # the blob starts with its own type, as a length-prefixed string
    length = int.from_bytes(blob[:4], "big")
    if blob[4:4 + length].decode("ascii", "replace") != match.group(1):
        raise Refused(f"key {_show(value)}: its type does not match its contents: "
                      "refused, nothing was run")
    return value


def check_request(request) -> dict:
    """The request, checked; raises Refused before anything is run."""
    if not isinstance(request, dict):
        raise Refused("a request is a JSON object: refused, nothing was run")
    op = request.get("op")
    if op not in OPS:
        raise Refused(f"unknown op {_show(op)} (one of {', '.join(OPS)}): refused, nothing was run")
    extra = set(request) - FIELDS[op]
    missing = FIELDS[op] - set(request)
    if extra or missing:
        raise Refused(f"{op}: unexpected fields {sorted(extra)} / missing fields {sorted(missing)}: "
                      "refused, nothing was run")
    if op == "ensure":
        check_username(request["username"])
        keys = request["keys"]
        if not isinstance(keys, list) or len(keys) > MAX_KEYS:
            raise Refused(f"keys must be a list of at most {MAX_KEYS}: refused, nothing was run")
        for key in keys:
            check_key(key)
        if not isinstance(request["locked"], bool):
            raise Refused("locked must be true or false: refused, nothing was run")
    elif op == "rename":
        check_username(request["from"], "from")
        check_username(request["to"], "to")
    elif op == "remove":
        check_username(request["username"])
    elif op == "batch":
        items = request["requests"]
        if not isinstance(items, list) or len(items) > MAX_BATCH:
            raise Refused(f"a batch's requests are a list of at most {MAX_BATCH}: refused, nothing was run")
    return request


def check_in_batch(request) -> dict:
    """One request of a batch, checked as a request on its own (a batch
    holds no list and no other batch)."""
    if isinstance(request, dict) and request.get("op") not in IN_BATCH:
        raise Refused(f"op {_show(request.get('op'))} cannot be part of a batch "
                      f"(one of {', '.join(IN_BATCH)}): refused, nothing was run")
    return check_request(request)


def ensure(username: str, keys: list[str], locked: bool) -> dict:
    return check_request({"op": "ensure", "username": username, "keys": sorted(keys),
                          "locked": bool(locked)})


def rename(old: str, new: str) -> dict:
    return check_request({"op": "rename", "from": old, "to": new})


def remove(username: str) -> dict:
    return check_request({"op": "remove", "username": username})


def batch(reqs: list[dict]) -> dict:
    for request in reqs:
        check_in_batch(request)
    return check_request({"op": "batch", "requests": list(reqs)})


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
