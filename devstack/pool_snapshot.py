"""Local accounts survive a restart: the local user pool's users kept beside the table.

moto's Cognito lives in memory, so after `make run` stops, every account was
gone, and signing up again with the same e-mail made a new `sub`: the old
account's cart and orders, still in the table (build/devstack/table.json),
were out of reach (they are keyed by the `sub`). This runs in the moto server
process (devstack/motoserver.py), like the table's Snapshotter:

- `PoolSnapshot.save` writes the pool's users (username, `sub`, attributes,
  status, password) to build/devstack/accounts.json when they changed and when
  the server stops; file mode 0600, and only ever on this machine (moto keeps
  passwords in clear; so does this file: local test accounts only);
- `POST /_devstack/accounts-restore`, sent by the supervisor once it has made
  the pool, puts them back with the same `sub`, so the account signs in again
  and finds its cart and orders. Tokens issued before the restart are not
  kept: the new pool has a new id, and the shopper signs in again.

`make reset` forgets the accounts with the table.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

FILE_NAME = "accounts.json"


def _pool(pool_name: str) -> Any:
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.core.models import DEFAULT_ACCOUNT_ID

    for backend in cognitoidp_backends[DEFAULT_ACCOUNT_ID].values():
        for pool in backend.user_pools.values():
            if pool.name == pool_name:
                return pool
    return None


def _user_record(user: Any) -> dict[str, Any]:
    return {
        "username": user.username,
        "sub": user.id,
        "password": user.password,
        "status": getattr(user.status, "value", user.status),
        "enabled": bool(user.enabled),
        "attributes": [dict(attribute) for attribute in user.attributes],
    }


def users_of(pool_name: str) -> list[dict[str, Any]] | None:
    """Every user of the pool, as saved; None when there is no such pool (yet)."""
    pool = _pool(pool_name)
    if pool is None:
        return None
    return [_user_record(user) for user in pool.users.values()]


def restore_users(pool_name: str, saved: list[dict[str, Any]]) -> int:
    """Put saved users back into the pool with their own `sub`; the number restored."""
    from moto.cognitoidp.models import CognitoIdpUser, UserStatus

    pool = _pool(pool_name)
    if pool is None:
        raise LookupError(f"no user pool named {pool_name!r}")
    restored = 0
    for record in saved:
        username = str(record["username"])
        if username in pool.users:
            continue  # already there (a pool that survived): keep it
        user = CognitoIdpUser(pool.id, username, record.get("password"),
                              UserStatus(record["status"]), list(record["attributes"]))
        user.id = str(record["sub"])
        user.update_attributes([{"Name": "sub", "Value": user.id}])
        user.enabled = bool(record.get("enabled", True))
        pool.users[username] = user
        restored += 1
    return restored


class PoolSnapshot:
    """Save one pool's users to a JSON file when they changed, and put them back."""

    def __init__(self, path: Path, pool_name: str, lock: threading.Lock | None = None) -> None:
        self.path = path
        self.pool_name = pool_name
        self.lock = lock or threading.Lock()
        self._saved: list[dict[str, Any]] | None = None
        self.armed = False  # nothing is saved before the restore: an empty pool must not win

    def saved_users(self) -> list[dict[str, Any]]:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        users = saved.get("users", []) if saved.get("pool") == self.pool_name else []
        return list(users)

    def restore(self) -> int:
        """Put the saved users back (under the lock); from now on, save changes."""
        with self.lock:
            restored = restore_users(self.pool_name, self.saved_users())
        self.armed = True
        self.save()
        return restored

    def save(self) -> int | None:
        """Write the users if they changed; the number written (None: nothing written)."""
        if not self.armed:
            return None
        with self.lock:
            users = users_of(self.pool_name)
        if users is None or users == self._saved:
            return None
        self._write({"pool": self.pool_name, "users": users})
        self._saved = users
        return len(users)

    def _write(self, content: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".accounts-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:  # mkstemp: mode 0600
            json.dump(content, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
