"""Signed-out sessions: what makes a copy of a session or refresh cookie worthless.

    SESSION#<sessionId>   REVOKED   `expiresAt` (TTL): tokens of this session are refused

The session id is Cognito's `origin_jti`, the same in every ID token minted from
one sign-in, refreshed ones included; Cognito revokes the refresh token itself
(RevokeToken), and this record refuses the ID tokens already handed out, which
Cognito cannot recall (they are verified here, by signature, until they expire).

Requests per operation:
    revoke       1 PutItem per session id (sign-out)
    is_revoked   1 GetItem, strongly consistent (every request with a valid session)
"""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.store import errors
from chalicelib.store.codec import key, n


class DynamoRevocations:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, session_id: str) -> dict[str, Any]:
        return key(table.SESSION_PREFIX + session_id, table.REVOKED_SK)

    def revoke(self, session_id: str, expires_at: int) -> None:
        """Refuse the session's tokens until expires_at; again is harmless."""
        with errors.translated():
            self._client.put_item(TableName=self._table, Item={
                **self._key(session_id), table.TTL_ATTRIBUTE: n(expires_at)})

    def is_revoked(self, session_id: str, now: int) -> bool:
        # Strongly consistent: a copy replayed right after sign-out must not slip
        # through a replica that has not seen the record yet. TTL deletes late,
        # so an expired record is checked by its time, not by its presence.
        with errors.translated():
            item = self._client.get_item(TableName=self._table, Key=self._key(session_id),
                                         ConsistentRead=True).get("Item")
        return item is not None and int(item[table.TTL_ATTRIBUTE]["N"]) > now
