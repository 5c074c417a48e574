"""The JSON shapes of the users' system accounts on both nodes (the
cluster page's account section): written and read by the API, described in
the OpenAPI document; ``ezpyr-accounts status --json`` writes the same."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ezpyr.api.schemas import Strict


class AccountNodeOut(BaseModel):
    ssh_address: str = Field(description="the node's sshd (host:port); empty when not set")
    problem: str = Field(description="why account work for the node cannot start; empty when it can")
    pinned: str | None = Field(description="the node's pinned SSH host key fingerprint")
    presented: str | None = Field(description="a different fingerprint the node presented (its tasks wait "
                                              "until it is reset)")
    waiting: int
    failed: int
    last_error: str


class AccountsOut(BaseModel):
    provisioning_user: str
    key_file: str
    nodes: dict[str, AccountNodeOut] = Field(description="this and other")


class ResetFingerprintIn(Strict):
    node: Literal["this", "other"]
    presented: str = Field(max_length=100, description="the fingerprint the node presents now, as GET /accounts "
                                                      "shows it: confirms that this is the key to pin")


class ResetFingerprintOut(BaseModel):
    node: str
    old: str
    new: str
