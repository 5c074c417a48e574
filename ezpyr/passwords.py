"""Password hashing (argon2id) and the password policy."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hashes and checks passwords. Cost parameters come from the settings
    (``ezpyr.argon2.time_cost`` …) so tests can make hashing cheap."""

    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        # A hash to compare against when the user does not exist, so that a
        # login for an unknown name takes as long as one for a known name.
        self._dummy = self._hasher.hash("not a real password")

    @classmethod
    def from_settings(cls, settings: dict) -> "Passwords":
        return cls(
            time_cost=int(settings.get("ezpyr.argon2.time_cost", 3)),
            memory_cost=int(settings.get("ezpyr.argon2.memory_cost", 65536)),
            parallelism=int(settings.get("ezpyr.argon2.parallelism", 4)),
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and bool(
                password_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def policy_errors(password: str, min_length: int, require_mixed: bool) -> list[str]:
    """What is wrong with a new password under the policy (empty: fine)."""
    errors = []
    if len(password) < min_length:
        errors.append(f"Password must be at least {min_length} characters long.")
    if len(password) > 1024:
        errors.append("Password must be at most 1024 characters long.")
    if require_mixed:
        classes = [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
        if sum(classes) < 3:
            errors.append(
                "Password must mix at least three of: lower case, upper case, digits, symbols."
            )
    return errors


def includeme(config):
    config.registry["passwords"] = Passwords.from_settings(config.get_settings())
    config.add_request_method(lambda request: request.registry["passwords"], "passwords", reify=True)
