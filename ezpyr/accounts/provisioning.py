"""The provisioning key: the key pair the master signs in to each node's
provisioning account with. Its public half goes in that account's
``authorized_keys``, restricted to the account agent."""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ezpyr.accounts.settings import AccountSettings


def ensure_key(path: str) -> bool:
    """Make the key pair at ``path`` (private, mode 0600) and ``path.pub``
    unless it exists; True when made."""
    target = Path(path)
    if target.exists():
        return False
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    Path(f"{path}.pub").write_bytes(public + b" ezpyr-provisioning\n")
    return True


def public_key(path: str) -> str:
    private = serialization.load_ssh_private_key(Path(path).read_bytes(), password=None)
    return private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode("ascii")


def authorized_keys_line(settings: AccountSettings) -> str:
    """The one line for the provisioning account's ``authorized_keys`` on
    each node: the key may run the account agent and nothing else."""
    command = settings.agent_command().replace("\\", "\\\\").replace('"', '\\"')
    return f'restrict,command="{command}" {public_key(settings.key_file)} ezpyr-provisioning'
