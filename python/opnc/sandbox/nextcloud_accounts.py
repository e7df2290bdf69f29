"""Users, groups, team folders and app passwords of the emulated Nextcloud, and its login checks.

Secrets are kept as SHA-256 digests only; the plaintext of everything the emulator hands out is
recorded once in a :class:`SecretLedger`, which exists for leak-scanning tests
(``issued_secrets()``) and is never part of ``state()``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Callable

ALPHANUMERIC = string.ascii_letters + string.digits
# ISecureRandom::CHAR_SYMBOLS: the app password of user OpenProject mixes these in (§9).
SYMBOLS = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

OPENPROJECT_ENTITY = "OpenProject"  # user, group and team folder created for project folders
NO_AUTOMATIC_FOLDERS_GROUP = "OpenProjectNoAutomaticProjectFolders"
ADMIN_GROUP = "admin"
FULL_PERMISSIONS = 31


def random_string(length: int, alphabet: str = ALPHANUMERIC) -> str:
    """``length`` characters drawn uniformly from ``alphabet`` (at most 256 of them) with the OS's
    random source, like Nextcloud's ISecureRandom::generate. One read of random bytes per call:
    secrets.choice per character cost a tenth of the emulators' CPU time in a batch run. Bytes at
    or above the largest multiple of len(alphabet) are skipped, so no character is favoured."""
    size = len(alphabet)
    limit = 256 - 256 % size
    chars: list[str] = []
    while len(chars) < length:
        for byte in secrets.token_bytes(length - len(chars) + 16):
            if byte < limit:
                chars.append(alphabet[byte % size])
                if len(chars) == length:
                    break
    return "".join(chars)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class SecretLedger:
    """Every secret value the emulator issued or was given, in order, without duplicates."""

    def __init__(self) -> None:
        self._values: list[str] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def record(self, value: str | None) -> str | None:
        if value:
            with self._lock:
                if value not in self._seen:
                    self._seen.add(value)
                    self._values.append(value)
        return value

    def values(self) -> list[str]:
        with self._lock:
            return list(self._values)


@dataclass
class User:
    uid: str
    password_digest: str
    display_name: str


@dataclass
class Group:
    name: str
    members: set[str] = field(default_factory=set)
    subadmins: set[str] = field(default_factory=set)


@dataclass
class TeamFolder:
    id: int
    mount_point: str
    groups: dict[str, int] = field(default_factory=dict)  # group -> permissions bitmask
    acl: bool = False
    acl_managers: set[str] = field(default_factory=set)  # user ids allowed to manage the ACL


@dataclass
class AppToken:
    """A row of Nextcloud's authtoken table: an app password, or an OAuth access token."""
    id: int
    uid: str
    name: str
    password_digest: str
    permanent: bool
    expires_at: float | None = None  # OAuth access tokens expire; app passwords do not

    def usable(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


class Accounts:
    """Users, groups, team folders and tokens. Not locked itself: the app's lock guards it."""

    def __init__(self, ledger: SecretLedger, clock: Callable[[], float]) -> None:
        self.ledger = ledger
        self.clock = clock
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.team_folders: dict[int, TeamFolder] = {}
        self.tokens: dict[int, AppToken] = {}
        self._next_token_id = 1
        self._next_folder_id = 1

    # --- users and groups -----------------------------------------------------------------------

    def add_user(self, uid: str, password: str, admin: bool = False) -> User:
        self.ledger.record(password)
        user = User(uid, digest(password), uid)
        self.users[uid] = user
        if admin:
            self.add_to_group(uid, ADMIN_GROUP)
        return user

    def add_to_group(self, uid: str, group: str, subadmin: bool = False) -> None:
        entry = self.groups.setdefault(group, Group(group))
        entry.members.add(uid)
        if subadmin:
            entry.subadmins.add(uid)

    def is_admin(self, uid: str) -> bool:
        group = self.groups.get(ADMIN_GROUP)
        return group is not None and uid in group.members

    def create_team_folder(self, mount_point: str) -> TeamFolder:
        folder = TeamFolder(self._next_folder_id, mount_point)
        self._next_folder_id += 1
        self.team_folders[folder.id] = folder
        return folder

    def team_folder_named(self, mount_point: str) -> TeamFolder | None:
        return next((f for f in self.team_folders.values() if f.mount_point == mount_point), None)

    # --- tokens ---------------------------------------------------------------------------------

    def create_token(self, uid: str, name: str, password: str, permanent: bool,
                     expires_at: float | None = None) -> AppToken:
        self.ledger.record(password)
        token = AppToken(self._next_token_id, uid, name, digest(password), permanent, expires_at)
        self._next_token_id += 1
        self.tokens[token.id] = token
        return token

    def rotate_token(self, token: AppToken, new_password: str, expires_at: float | None) -> None:
        self.ledger.record(new_password)
        token.password_digest = digest(new_password)
        token.expires_at = expires_at

    def tokens_of(self, uid: str, name: str) -> list[AppToken]:
        return [t for t in self.tokens.values() if t.uid == uid and t.name == name]

    def delete_tokens(self, uid: str | None, name: str) -> int:
        """Delete the tokens called `name` of `uid` (of every user when uid is None)."""
        doomed = [t.id for t in self.tokens.values() if t.name == name and (uid is None or t.uid == uid)]
        for token_id in doomed:
            del self.tokens[token_id]
        return len(doomed)

    def _token_for(self, password: str) -> AppToken | None:
        wanted = digest(password)
        now = self.clock()
        for token in self.tokens.values():
            if hmac.compare_digest(token.password_digest, wanted) and token.usable(now):
                return token
        return None

    # --- logins ---------------------------------------------------------------------------------

    def login_basic(self, login: str, password: str, allow_password_login: bool) -> str | None:
        """The user id for Basic credentials (login password or app password), or None."""
        user = self.users.get(login)
        if user is None:
            return None
        if allow_password_login and hmac.compare_digest(user.password_digest, digest(password)):
            return login
        token = self._token_for(password)
        if token is not None and token.uid == login:
            return login
        return None

    def login_bearer(self, bearer: str) -> str | None:
        """The user id of an OAuth access token (or any app token) sent as Bearer, or None."""
        token = self._token_for(bearer)
        if token is None or token.uid not in self.users:
            return None
        return token.uid


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(login, password) of an ``Authorization: Basic`` header, or None for anything else."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if ":" not in decoded:
        return None
    login, password = decoded.split(":", 1)
    return login, password


def parse_bearer(header: str | None) -> str | None:
    if not header or not header[:7].lower() == "bearer ":
        return None
    return header[7:].strip() or None
