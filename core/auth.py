"""Who may do what: password hashing, bearer tokens, and the one access declaration every route makes."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import g, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import Forbidden, Unauthorized

from core.audit import Actor
from core.db import utcnow
from core.extensions import db, login_manager
from core.models import ApiToken, Role, User

# argon2id with OWASP's minimum memory and passes (19 MiB, 2 passes), so a log-in stays fast and many
# logins at once do not exhaust memory, in 2 lanes that two threads fill at once (RFC 9106 §4: as many
# lanes as threads at hand): the same work and memory as one lane, done sooner on two cores. Hashes made with other parameters are upgraded at the next successful log-in (needs_rehash).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=2)
_DUMMY_HASH = _hasher.hash("kequip-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def verify_password(user: User | None, password: str) -> bool:
    """Constant work whether or not the user exists, so timing tells nothing about accounts."""
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> tuple[str, str]:
    """A random token for the user and the SHA-256 we keep of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_secret(token)


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session's person, unless inactive or the session is older than their last log-out or new
    password (User.get_id): checked on every request."""
    key, _, version = user_id.partition(":")
    user = db.session.get(User, int(key)) if key.isdigit() else None
    if user is None or not user.is_active or version != str(user.session_version):
        return None
    return user


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def _bearer_user() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    row = db.session.scalars(  # the token, its user and the user's roles in one query
        select(ApiToken).where(ApiToken.token_hash == hash_secret(token.strip()))
        .options(joinedload(ApiToken.user).joinedload(User.grants))).unique().one_or_none()
    if row is None or not row.is_live(utcnow()) or not row.user.is_active:
        return None
    g.api_token = row
    return row.user


def current_principal() -> User | None:
    """The caller: the bearer token's user under /api/, the logged-in person elsewhere."""
    if is_api_request():
        if "api_user" not in g:
            g.api_user = _bearer_user()
        return g.api_user
    return current_user._get_current_object() if current_user.is_authenticated else None  # the User, not a proxy


def current_actor() -> Actor:
    user = current_principal()
    if user is None:
        return Actor(user_id=None, label="anonymous", ip=request.remote_addr)
    return Actor.of(user, request.remote_addr)


@dataclass(frozen=True, slots=True)
class AccessRule:
    """None: anyone, logged in or not. Empty: any logged-in person. Otherwise: one of these roles."""

    roles: frozenset[Role] | None

    @property
    def is_public(self) -> bool:
        return self.roles is None

    def allows(self, user: User | None) -> bool:
        if self.roles is None:
            return True
        if user is None:
            return False
        return not self.roles or user.has_role(*self.roles)


ACCESS_ATTRIBUTE = "__kequip_access__"
# Endpoints that libraries register and that are public by nature.
LIBRARY_PUBLIC_ENDPOINTS = {"static", "bootstrap.static", "api-docs.openapi_json"}


def public(view: Callable) -> Callable:
    setattr(view, ACCESS_ATTRIBUTE, AccessRule(None))
    return view


def requires(*roles: Role) -> Callable[[Callable], Callable]:
    """Declare who may call a page or API route; no roles means any logged-in person."""
    rule = AccessRule(frozenset(roles))

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = current_principal()
            if user is None:
                raise Unauthorized()
            if not rule.allows(user):
                raise Forbidden()
            return view(*args, **kwargs)

        setattr(guarded, ACCESS_ATTRIBUTE, rule)
        return guarded

    return decorator


def access_rule(endpoint: str, view: Callable) -> AccessRule | None:
    if endpoint in LIBRARY_PUBLIC_ENDPOINTS:
        return AccessRule(None)
    return getattr(view, ACCESS_ATTRIBUTE, None)
