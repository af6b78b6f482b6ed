"""Access use cases: API keys (create, list, revoke, verify), their dashboard sessions (open,
verify, end) and who may see which stores.

A key's secret is shown once, when it is made; only its keyed hash (HMAC-SHA256 under the
server's secret key) is stored, so a copy of the database lets nobody in. A key acts either with
a scope or for an owner, whose reads are narrowed to the owner's stores (`db.owners`)."""

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import ApiKey, DashboardSession, KeyScope, WebhookSubscription

SECRET_PREFIX: Final = "sm_"
"""Every secret starts so: secret scanners (and people) can recognise a leaked key."""
_SECRET_BYTES: Final = 32  # 256 bits of randomness, 43 url-safe characters
_SHOWN_CHARS: Final = len(SECRET_PREFIX) + 8
MAX_SECRET_CHARS: Final = 256
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}")
_MAX_OWNER_CHARS: Final = 200
LAST_USED_STEP: Final = timedelta(minutes=1)
"""`last_used_at` is written when it is older than this: a write a minute, not a request."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who a request acts as: a key with a scope, a key of an owner, or anybody (auth off)."""

    key_id: UUID | None
    """The key's id: what its idempotency keys are scoped by."""
    key_hash: bytes | None
    """The key's stored hash: what its triggers are counted under, known from a presented
    secret before the database is asked (`web.rate_limits`)."""
    key_name: str | None
    key_prefix: str | None
    scope: KeyScope | None
    owner_id: str | None
    """Set for an owner key: what it reads is narrowed to this owner's stores."""

    @property
    def is_admin(self) -> bool:
        """An admin key, or anybody with authentication off: sees and acts on everything."""
        return self.scope is KeyScope.admin

    def allows(self, scopes: frozenset[KeyScope], *, owners: bool) -> bool:
        """Whether this principal may use a route open to `scopes` (and owner keys if `owners`);
        admin may use every route."""
        if self.is_admin or self.scope in scopes:
            return True
        return owners and self.owner_id is not None


ANYBODY: Final = Principal(
    key_id=None, key_hash=None, key_name=None, key_prefix=None, scope=KeyScope.admin, owner_id=None
)
"""With authentication off, every request may do everything."""


class Rejection(StrEnum):
    malformed = "malformed"
    unknown = "unknown"
    revoked = "revoked"
    expired = "expired"


class KeyRejected(Exception):
    """The presented secret is no valid key; `key_prefix` and `key_name` are safe to log."""

    def __init__(self, reason: Rejection, *, key_prefix: str | None, key_name: str | None) -> None:
        super().__init__(f"API key {reason.value}")
        self.reason = reason
        self.key_prefix = key_prefix
        self.key_name = key_name


class InvalidKeyRequest(ValueError):
    """A key cannot be made as asked (bad name or owner id, expiry in the past, name taken)."""


class KeyNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no API key named {name!r}")
        self.name = name


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    secret: str
    """The key's secret: shown to its owner once, stored nowhere."""


def secret_hash(server_key: bytes, secret: str) -> bytes:
    return hmac.new(server_key, secret.encode(), hashlib.sha256).digest()


def shown_prefix(secret: str) -> str:
    return secret[:_SHOWN_CHARS]


async def create_key(
    session: AsyncSession,
    *,
    server_key: bytes,
    name: str,
    scope: KeyScope | None = None,
    owner_id: str | None = None,
    expires_at: datetime | None = None,
    now: datetime,
) -> CreatedKey:
    """A new key named `name` with either `scope` or `owner_id`; its secret is in the result."""
    if not _NAME.fullmatch(name):
        raise InvalidKeyRequest(
            f"key name {name!r}: use 1-100 letters, digits or ._:@- (starting with a letter "
            "or digit)"
        )
    if (scope is None) == (owner_id is None):
        raise InvalidKeyRequest("a key has either a scope or an owner")
    if owner_id is not None:
        owner_id = owner_id.strip()
        if not owner_id or len(owner_id) > _MAX_OWNER_CHARS:
            raise InvalidKeyRequest(f"owner id {owner_id!r}: 1-{_MAX_OWNER_CHARS} characters")
    if expires_at is not None and expires_at <= now:
        raise InvalidKeyRequest(f"expiry {expires_at.isoformat()} is not in the future")
    if await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise InvalidKeyRequest(f"an API key named {name!r} exists already")
    secret = SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    key = ApiKey(
        name=name,
        prefix=shown_prefix(secret),
        secret_hash=secret_hash(server_key, secret),
        scope=scope,
        owner_id=owner_id,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(key)
    try:
        await session.flush()
    except IntegrityError as error:  # made at the same moment by someone else
        raise InvalidKeyRequest(f"an API key named {name!r} exists already") from error
    return CreatedKey(key=key, secret=secret)


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    return (await session.scalars(sa.select(ApiKey).order_by(ApiKey.name))).all()


async def revoke_key(session: AsyncSession, name: str, *, now: datetime) -> ApiKey:
    """Revoke the key named `name` from `now` on; a key revoked before keeps its first date.
    Its webhooks are disabled with it, saying why: nothing more is sent for a revoked key
    (`webhooks.outbox.key_ended`), and their lists should show it."""
    key = await session.scalar(sa.select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise KeyNotFound(name)
    if key.revoked_at is None:
        key.revoked_at = now
        await session.execute(
            sa.update(WebhookSubscription)
            .where(WebhookSubscription.key_name == name, WebhookSubscription.disabled_at.is_(None))
            .values(disabled_at=now, disabled_reason="its API key was revoked")
        )
        await session.flush()
    return key


async def verify(
    session: AsyncSession, *, server_key: bytes, secret: str, now: datetime
) -> Principal:
    """The principal a presented secret stands for, or `KeyRejected`; notes the key's use.

    The key is found by the hash of the secret (an index look-up that reveals nothing about
    near misses), and the hashes are compared once more in constant time."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > MAX_SECRET_CHARS:
        raise KeyRejected(Rejection.malformed, key_prefix=None, key_name=None)
    digest = secret_hash(server_key, secret)
    # The columns only, not an ORM object: this runs on every request.
    key = (await session.execute(_KEY_BY_HASH, {"digest": digest})).one_or_none()
    prefix = shown_prefix(secret)
    if key is None or not hmac.compare_digest(key.secret_hash, digest):
        raise KeyRejected(Rejection.unknown, key_prefix=prefix, key_name=None)
    principal = _principal(key, prefix=prefix, now=now)
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_STEP:
        await session.execute(_NOTE_USE, {"key_id": key.id, "now": now})
    return principal


class SessionEnded(Exception):
    """The dashboard session is unknown: signed out, ended everywhere, or expired."""


async def open_session(
    session: AsyncSession, *, key_name: str, now: datetime, expires_at: datetime
) -> str:
    """A new dashboard session of the key named `key_name`, until `expires_at`: its token, for
    the cookie (only the token's hash is stored)."""
    key_id = await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == key_name))
    if key_id is None:
        raise KeyNotFound(key_name)
    # Sign-out deletes its row; expired rows go here, with each sign-in, without an upkeep job.
    await session.execute(sa.delete(DashboardSession).where(DashboardSession.expires_at <= now))
    token = secrets.token_urlsafe(_SECRET_BYTES)
    await session.execute(
        sa.insert(DashboardSession).values(
            token_hash=_session_hash(token), key_id=key_id, created_at=now, expires_at=expires_at
        )
    )
    return token


async def verify_session(session: AsyncSession, token: str, *, now: datetime) -> Principal:
    """The principal of the dashboard session `token`: `SessionEnded` if it was ended or has
    expired, `KeyRejected` if its key was revoked or has expired since."""
    key = (
        await session.execute(_KEY_BY_SESSION, {"digest": _session_hash(token), "now": now})
    ).one_or_none()
    if key is None:
        raise SessionEnded("the dashboard session has ended")
    return _principal(key, prefix=key.prefix, now=now)


def _principal(key: sa.Row[*tuple[Any, ...]], *, prefix: str, now: datetime) -> Principal:
    """The principal of a key read by `_KEY_BY_HASH` or `_KEY_BY_SESSION`; `KeyRejected`
    (naming it by `prefix`) if it is revoked or has expired."""
    if key.revoked_at is not None:
        raise KeyRejected(Rejection.revoked, key_prefix=prefix, key_name=key.name)
    if key.expires_at is not None and key.expires_at <= now:
        raise KeyRejected(Rejection.expired, key_prefix=prefix, key_name=key.name)
    return Principal(
        key_id=key.id,
        key_hash=key.secret_hash,
        key_name=key.name,
        key_prefix=key.prefix,
        scope=key.scope,
        owner_id=key.owner_id,
    )


async def end_session(session: AsyncSession, token: str) -> None:
    """Sign out: the session `token` is over, for whoever holds its cookie."""
    await session.execute(
        sa.delete(DashboardSession).where(DashboardSession.token_hash == _session_hash(token))
    )


async def end_key_sessions(session: AsyncSession, key_name: str) -> int:
    """Sign out everywhere: every dashboard session of the key named `key_name` is over (the key
    itself stays valid); how many there were."""
    key_id = await session.scalar(sa.select(ApiKey.id).where(ApiKey.name == key_name))
    if key_id is None:
        raise KeyNotFound(key_name)
    ended = await session.execute(
        sa.delete(DashboardSession).where(DashboardSession.key_id == key_id)
    )
    return int(ended.rowcount)  # type: ignore[attr-defined]


def _session_hash(token: str) -> bytes:
    # The token is 256 random bits: a plain hash is enough to keep a database copy from
    # opening sessions.
    return hashlib.sha256(token.encode()).digest()


_KEY_BY_SESSION: Final = (
    sa.select(
        ApiKey.id,
        ApiKey.secret_hash,
        ApiKey.name,
        ApiKey.prefix,
        ApiKey.scope,
        ApiKey.owner_id,
        ApiKey.expires_at,
        ApiKey.revoked_at,
    )
    .join(DashboardSession, DashboardSession.key_id == ApiKey.id)
    .where(
        DashboardSession.token_hash == sa.bindparam("digest"),
        DashboardSession.expires_at > sa.bindparam("now"),
    )
)
_NOTE_USE: Final = (
    sa.update(ApiKey)
    .where(
        ApiKey.id
        == sa.select(ApiKey.id)
        .where(ApiKey.id == sa.bindparam("key_id"))
        # A burst of requests with one key would queue on the row's lock, each until the
        # request before it ends: the one holding it notes the use, the others skip it. The
        # lock is the one the update itself takes (NO KEY UPDATE): rows that refer to the key
        # (a schedule, a dashboard session) are made meanwhile without waiting for it.
        .with_for_update(skip_locked=True, key_share=True)
        .scalar_subquery()
    )
    .values(last_used_at=sa.bindparam("now"))
)
# The table's columns, not the model's attributes: a statement of ORM attributes goes through
# the ORM's compilation and row loading, which this read, on every request, does not need.
_keys = ApiKey.__table__.c
_KEY_BY_HASH: Final = sa.select(
    _keys.id,
    _keys.name,
    _keys.prefix,
    _keys.secret_hash,
    _keys.scope,
    _keys.owner_id,
    _keys.expires_at,
    _keys.revoked_at,
    _keys.last_used_at,
).where(_keys.secret_hash == sa.bindparam("digest"))
