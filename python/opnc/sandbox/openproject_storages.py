"""File storages of the emulated OpenProject: the API v3 endpoints of contract/openproject.md §3
to §10 and the HAL read models they answer with (the data is in ``openproject_model``, the checks
in ``openproject_validation``).

A storage owns (by id) its OP OAuth application (in the Doorkeeper provider), its stored Nextcloud
OAuth client ("oauth client credentials", with the users' Nextcloud tokens OP holds) and its
project-storage records. Deleting the storage deletes all of them.

The live checks of a write run without holding the app lock, so a slow Nextcloud does not block
other requests; uniqueness is checked under the lock right before the change is stored.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any, Callable
from urllib.parse import quote, urlencode

from opnc.sandbox.app import Request, Response
from opnc.sandbox.openproject_errors import (
    HAL_JSON, PropertyError, constraint_violations, invalid_query, invalid_request_body, missing_permission,
    not_found)
from opnc.sandbox.openproject_model import (
    APPLICATION_PASSWORD_SINCE, AUTHENTICATION_METHOD_URNS, AUTHORIZATION_STATE_PREFIX, AUTHORIZATION_STATE_TITLES,
    DEFAULT_FORBIDDEN_CHARACTERS,
    LATER_FIELDS_SINCE, MAX_LENGTH, NEXTCLOUD_TYPE, OAUTH2_SSO, REDIRECT_PATH, SSO_FIELDS_SINCE, TWO_WAY_OAUTH2,
    Caller, OAuthClient, ProjectStorage, Settings, Storage, iso8601)
from opnc.sandbox.openproject_oauth import DoorkeeperProvider, OAuthApplication
from opnc.sandbox.openproject_probes import NextcloudProbe
from opnc.sandbox.openproject_validation import (
    as_text, parse_changes, property_error, uniqueness_errors, validate_storage)

class StorageService:
    """Storages, their Nextcloud clients and project storages, with the endpoints that serve them."""

    def __init__(self, lock: threading.RLock, oauth: DoorkeeperProvider, clock: Callable[[], float],
                 probe_factory: Callable[[], NextcloudProbe], base_url: Callable[[], str],
                 user_title: Callable[[int], str | None]) -> None:
        self.lock = lock
        self.user_title = user_title
        self.oauth = oauth
        self.clock = clock
        self.probe_factory = probe_factory
        self.base_url = base_url
        self.storages: dict[int, Storage] = {}
        self.clients: dict[int, OAuthClient] = {}  # by OAuthClient.id
        self.project_storages: dict[int, ProjectStorage] = {}
        self._ids = {"storage": 1, "client": 1, "project_storage": 1, "project": 1}
        self._issued: list[str] = []  # stored secrets, kept for leak scans after deletion
        # (user id, storage ids) -> live authorization states; set by the app (openproject_connections)
        self.live_states: Callable[[int, list[int]], dict[int, str]] | None = None

    def reset(self) -> None:
        self.storages.clear()
        self.clients.clear()
        self.project_storages.clear()
        self._ids = {"storage": 1, "client": 1, "project_storage": 1, "project": 1}

    def _next_id(self, kind: str) -> int:
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    # --- lookups ---

    def client_of(self, storage_id: int) -> OAuthClient | None:
        return next((c for c in self.clients.values() if c.storage_id == storage_id), None)

    def application_of(self, storage: Storage) -> OAuthApplication | None:
        if storage.oauth_application_id is None:
            return None
        return self.oauth.applications.get(storage.oauth_application_id)

    def visible(self, caller: Caller, storage: Storage) -> bool:
        """Admins see every storage; other users see those enabled in a project (the emulated
        users are members of every project with view_file_links); anonymous sees none."""
        if caller.anonymous:
            return False
        if caller.admin:
            return True
        return any(p.storage_id == storage.id for p in self.project_storages.values())

    def configured(self, storage: Storage) -> bool:
        if not storage.host:
            return False
        if storage.authentication_method == OAUTH2_SSO:
            return bool(storage.storage_audience)
        return self.application_of(storage) is not None and self.client_of(storage.id) is not None

    # --- rendering ---

    def render_application(self, application: OAuthApplication, include_secret: bool = False) -> dict[str, Any]:
        storage = self.storages.get(application.integration_id or 0)
        rendered: dict[str, Any] = {
            "_type": "OAuthApplication",
            "id": application.id,
            "name": application.name,
            "clientId": application.uid,
        }
        if include_secret:
            rendered["clientSecret"] = application.secret
        rendered.update({
            "confidential": application.confidential,
            "createdAt": iso8601(application.created_at),
            "updatedAt": iso8601(application.updated_at),
            "scopes": application.scopes.split(),
            "_links": {
                "self": {"href": f"/api/v3/oauth_applications/{application.id}"},
                "owner": {"href": f"/api/v3/users/{application.owner_id}",
                          "title": self.user_title(application.owner_id)},
                "integration": {"href": f"/api/v3/storages/{application.integration_id}",
                                "title": storage.name if storage else None},
                "redirectUri": [{"href": uri} for uri in application.redirect_uri.split()],
            },
        })
        return rendered

    def render_client(self, client: OAuthClient) -> dict[str, Any]:
        storage = self.storages.get(client.storage_id)
        return {
            "_type": "OAuthClientCredentials",
            "id": client.id,
            "clientId": client.client_id,
            "confidential": bool(client.client_secret),
            "createdAt": iso8601(client.created_at),
            "updatedAt": iso8601(client.updated_at),
            "_links": {
                "self": {"href": f"/api/v3/oauth_client_credentials/{client.id}"},
                "integration": {"href": f"/api/v3/storages/{client.storage_id}",
                                "title": storage.name if storage else None},
            },
        }

    def _authorization_state(self, caller: Caller, storage: Storage, settings: Settings,
                             live: dict[int, str]) -> str:
        """The calling user's own Nextcloud connection, not the storage's health (§3.2); `live`
        holds the results of the live checks of the user's tokens."""
        client = self.client_of(storage.id)
        if client is None or not storage.host:
            return "Error"
        if caller.id in client.user_tokens:
            return live.get(storage.id, "Connected")
        return "NotConnected" if settings.version >= LATER_FIELDS_SINCE else "FailedAuthorization"

    def _live_states(self, caller: Caller, storage_ids: list[int]) -> dict[int, str]:
        """Call without holding the lock: the checks talk to Nextcloud."""
        if self.live_states is None or caller.anonymous:
            return {}
        return self.live_states(caller.id, storage_ids)

    def render_storage(self, storage: Storage, caller: Caller, settings: Settings,
                       include_secret: bool = False, live: dict[int, str] | None = None) -> dict[str, Any]:
        nextcloud = storage.provider_type == NEXTCLOUD_TYPE
        rendered: dict[str, Any] = {
            "_type": "Storage",
            "id": storage.id,
            "name": storage.name,
        }
        if settings.version >= APPLICATION_PASSWORD_SINCE:
            rendered["hasApplicationPassword"] = storage.automatic_management_enabled
        rendered["configured"] = self.configured(storage)
        if settings.version >= SSO_FIELDS_SINCE:
            rendered["storageAudience"] = storage.storage_audience
        if settings.version >= LATER_FIELDS_SINCE:
            rendered["tokenExchangeScope"] = storage.token_exchange_scope
            rendered["forbiddenFileNameCharacters"] = storage.forbidden_file_name_characters
        rendered["createdAt"] = iso8601(storage.created_at)
        rendered["updatedAt"] = iso8601(storage.updated_at)

        filters = json.dumps([{"storageId": {"operator": "=", "values": [str(storage.id)]}}], separators=(",", ":"))
        links: dict[str, Any] = {
            "self": {"href": f"/api/v3/storages/{storage.id}", "title": storage.name},
            "type": {"href": storage.provider_type, "title": "Nextcloud"},
        }
        if storage.host:
            links["origin"] = {"href": storage.host}
        if nextcloud and settings.version >= SSO_FIELDS_SINCE:
            method_urn = next(urn for urn, value in AUTHENTICATION_METHOD_URNS.items()
                              if value == storage.authentication_method)
            links["authenticationMethod"] = {"href": method_urn}
        links["prepareUpload"] = []
        links["open"] = {"href": f"/api/v3/storages/{storage.id}/open"}
        state = self._authorization_state(caller, storage, settings, live or {})
        links["authorizationState"] = {"href": AUTHORIZATION_STATE_PREFIX + state,
                                       "title": AUTHORIZATION_STATE_TITLES[state]}
        client = self.client_of(storage.id)
        if state == "FailedAuthorization" and client is not None and storage.host:
            links["authorize"] = {"href": self.nextcloud_authorize_url(storage, client), "title": "Authorize"}
        links["projectStorages"] = {
            "href": "/api/v3/project_storages?" + urlencode({"filters": filters}, quote_via=quote)}

        embedded: dict[str, Any] = {}
        if caller.admin and not caller.anonymous:
            application = self.application_of(storage)
            if nextcloud:
                links["oauthApplication"] = (
                    {"href": f"/api/v3/oauth_applications/{application.id}", "title": application.name}
                    if application else {"href": None})
                if application:
                    embedded["oauthApplication"] = self.render_application(application, include_secret)
            links["oauthClientCredentials"] = (
                {"href": f"/api/v3/oauth_client_credentials/{client.id}"} if client else {"href": None})
            if client:
                embedded["oauthClientCredentials"] = self.render_client(client)
        rendered["_links"] = links
        if embedded:
            rendered["_embedded"] = embedded
        return rendered

    def nextcloud_authorize_url(self, storage: Storage, client: OAuthClient) -> str:
        callback = f"{self.base_url()}/oauth_clients/{client.client_id}/callback"
        query = urlencode({"client_id": client.client_id, "redirect_uri": callback, "response_type": "code"},
                          quote_via=quote)
        return f"{storage.host}/index.php/apps/oauth2/authorize?{query}"

    # --- endpoints ---

    @staticmethod
    def _body_object(request: Request) -> dict[str, Any] | None:
        try:
            body = request.json() if request.body else None
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    def list(self, request: Request, caller: Caller, settings: Settings) -> Response:
        raw_filters = request.query_one("filters")
        if raw_filters is not None:
            try:
                parsed = json.loads(raw_filters)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list):
                return invalid_query()
        with self.lock:
            visible_ids = sorted(s.id for s in self.storages.values() if self.visible(caller, s))
        live = self._live_states(caller, visible_ids)
        with self.lock:
            elements = [self.render_storage(s, caller, settings, live=live)
                        for s in sorted(self.storages.values(), key=lambda s: s.id) if self.visible(caller, s)]
        body = {"_type": "Collection", "total": len(elements), "count": len(elements),
                "_links": {"self": {"href": "/api/v3/storages"}}, "_embedded": {"elements": elements}}
        return Response.json(200, body, content_type=HAL_JSON)

    def show(self, storage_id: int, caller: Caller, settings: Settings) -> Response:
        live = self._live_states(caller, [storage_id])
        with self.lock:
            storage = self.storages.get(storage_id)
            if storage is None or not self.visible(caller, storage):
                return not_found()
            return Response.json(200, self.render_storage(storage, caller, settings, live=live),
                                 content_type=HAL_JSON)

    def create(self, request: Request, caller: Caller, settings: Settings) -> Response:
        body = self._body_object(request)
        if body is None:
            return invalid_request_body()
        if not caller.may_manage_storages:
            return missing_permission()
        changes = parse_changes(body, settings)
        now = self.clock()
        draft = Storage(
            id=0, name=changes.name or "", host=changes.host, provider_type=changes.provider_type or "",
            authentication_method=changes.authentication_method or TWO_WAY_OAUTH2, creator_id=caller.id,
            created_at=now, updated_at=now, storage_audience=changes.storage_audience,
            token_exchange_scope=changes.token_exchange_scope,
            forbidden_file_name_characters=changes.forbidden_file_name_characters or DEFAULT_FORBIDDEN_CHARACTERS,
            password=changes.application_password or None)
        errors = validate_storage(draft, host_changed=True, method_changed=True,
                                  password_changed=draft.password is not None, settings=settings,
                                  probe=self.probe_factory())
        with self.lock:
            errors += uniqueness_errors(draft, list(self.storages.values()))
            if errors:
                return constraint_violations(errors)
            draft.id = self._next_id("storage")
            self.storages[draft.id] = draft
            if draft.password:
                self._issued.append(draft.password)
            if draft.authentication_method == TWO_WAY_OAUTH2:
                application = self.oauth.create_application(
                    name=f"{draft.name} (Nextcloud)", redirect_uri=f"{draft.host}/{REDIRECT_PATH}",
                    owner_id=caller.id, integration_id=draft.id)
                draft.oauth_application_id = application.id
            return Response.json(201, self.render_storage(draft, caller, settings, include_secret=True),
                                 content_type=HAL_JSON)

    def replace_oauth_application(self, storage_id: int, owner_id: int) -> OAuthApplication | None:
        """What the admin UI's "Replace OAuth values" does (DELETE /admin/settings/storages/:id/
        replace_oauth_application; no API exists, contract openproject.md §15): the storage's
        application is destroyed with its grants and tokens, and a new one is made. The caller
        holds the lock. None when there is no such two-way storage."""
        storage = self.storages.get(storage_id)
        if storage is None or storage.authentication_method != TWO_WAY_OAUTH2:
            return None
        if storage.oauth_application_id is not None:
            self.oauth.destroy_application(storage.oauth_application_id)
        application = self.oauth.create_application(
            name=f"{storage.name} (Nextcloud)", redirect_uri=f"{storage.host}/{REDIRECT_PATH}",
            owner_id=owner_id, integration_id=storage.id)
        storage.oauth_application_id = application.id
        return application

    def update(self, storage_id: int, request: Request, caller: Caller, settings: Settings) -> Response:
        body = self._body_object(request)
        if body is None:
            return invalid_request_body()
        with self.lock:
            current = self.storages.get(storage_id)
            if current is None or not self.visible(caller, current):
                return not_found()
            if not caller.may_manage_storages:
                return missing_permission()
            snapshot = dataclasses.replace(current)
        changes = parse_changes(body, settings)
        draft = dataclasses.replace(snapshot)
        if changes.name_given:
            draft.name = changes.name or ""
        host_changed = changes.host is not None and changes.host != snapshot.host
        if host_changed:
            draft.host = changes.host
        method_changed = (changes.authentication_method is not None
                          and changes.authentication_method != snapshot.authentication_method)
        if method_changed:
            draft.authentication_method = changes.authentication_method or TWO_WAY_OAUTH2
        if changes.storage_audience_given:
            draft.storage_audience = changes.storage_audience
        if changes.token_exchange_scope_given:
            draft.token_exchange_scope = changes.token_exchange_scope
        if changes.forbidden_file_name_characters is not None:
            draft.forbidden_file_name_characters = changes.forbidden_file_name_characters
        password_changed = False
        if changes.application_password_given:
            new_password = changes.application_password or None  # "" and null both disable
            password_changed = new_password != snapshot.password
            draft.password = new_password
        errors = validate_storage(draft, host_changed=host_changed, method_changed=method_changed,
                                  password_changed=password_changed, settings=settings,
                                  probe=self.probe_factory())
        with self.lock:
            current = self.storages.get(storage_id)
            if current is None:  # deleted while the live checks ran
                return not_found()
            errors += uniqueness_errors(draft, list(self.storages.values()))
            if errors:
                return constraint_violations(errors)
            draft.updated_at = self.clock()
            self.storages[storage_id] = draft
            if password_changed and draft.password:
                self._issued.append(draft.password)
            application = self.application_of(draft)
            if application is not None and (host_changed or draft.name != snapshot.name):
                # Newer releases rewrite the application's name and redirect URI to the storage.
                self.oauth.update_application(application.id, f"{draft.name} (Nextcloud)",
                                              f"{draft.host}/{REDIRECT_PATH}")
        live = self._live_states(caller, [storage_id])
        with self.lock:
            stored = self.storages.get(storage_id, draft)
            return Response.json(200, self.render_storage(stored, caller, settings, live=live), content_type=HAL_JSON)

    def delete(self, storage_id: int, caller: Caller) -> Response:
        with self.lock:
            storage = self.storages.get(storage_id)
            if storage is None or not self.visible(caller, storage):
                return not_found()
            if not caller.may_manage_storages:
                return missing_permission()
            if storage.oauth_application_id is not None:
                self.oauth.destroy_application(storage.oauth_application_id)
            self.clients = {cid: c for cid, c in self.clients.items() if c.storage_id != storage_id}
            self.project_storages = {pid: p for pid, p in self.project_storages.items() if p.storage_id != storage_id}
            del self.storages[storage_id]
            return Response.empty(204)

    def store_client(self, storage_id: int, request: Request, caller: Caller) -> Response:
        body = self._body_object(request)
        if body is None:
            return invalid_request_body()
        with self.lock:
            storage = self.storages.get(storage_id)
            if storage is None or not self.visible(caller, storage):
                return not_found()
            if not caller.may_manage_storages:
                return missing_permission()
            client_id = as_text(body.get("clientId")) or ""
            client_secret = as_text(body.get("clientSecret")) or ""
            errors: list[PropertyError] = []
            for attribute, value in (("clientId", client_id), ("clientSecret", client_secret)):
                if not value.strip():
                    errors.append(property_error(attribute, "blank"))
                elif len(value) > MAX_LENGTH:
                    errors.append(property_error(attribute, "too_long"))
            if errors:
                return constraint_violations(errors)
            # Replace semantics: every client of the storage goes, with the users' Nextcloud tokens.
            self.clients = {cid: c for cid, c in self.clients.items() if c.storage_id != storage_id}
            now = self.clock()
            client = OAuthClient(id=self._next_id("client"), client_id=client_id, client_secret=client_secret,
                                 storage_id=storage_id, created_at=now, updated_at=now)
            self.clients[client.id] = client
            self._issued.append(client_secret)
            return Response.json(201, self.render_client(client), content_type=HAL_JSON)

    def show_application(self, application_id: int, caller: Caller) -> Response:
        if not caller.may_manage_storages:
            return missing_permission()
        with self.lock:
            application = self.oauth.applications.get(application_id)
            if application is None:
                return not_found()
            return Response.json(200, self.render_application(application), content_type=HAL_JSON)

    def show_client(self, client_pk: int, caller: Caller) -> Response:
        if not caller.may_manage_storages:
            return missing_permission()
        with self.lock:
            client = self.clients.get(client_pk)
            if client is None:
                return not_found()
            return Response.json(200, self.render_client(client), content_type=HAL_JSON)

    # --- project storages (read only through the API; the admin UI creates them) ---

    def enable_in_project(self, storage_id: int, project_name: str, mode: str, creator_id: int) -> ProjectStorage:
        """The admin UI's "Enabled in projects"; API v3 cannot do this (contract §15)."""
        if mode not in ("inactive", "manual", "automatic"):
            raise ValueError(f"unknown project folder mode {mode!r}")
        with self.lock:
            if storage_id not in self.storages:
                raise KeyError(f"no storage {storage_id}")
            now = self.clock()
            record = ProjectStorage(id=self._next_id("project_storage"), storage_id=storage_id,
                                    project_id=self._next_id("project"), project_name=project_name,
                                    project_folder_mode=mode, creator_id=creator_id, created_at=now, updated_at=now)
            self.project_storages[record.id] = record
            return record

    def render_project_storage(self, record: ProjectStorage) -> dict[str, Any]:
        storage = self.storages[record.storage_id]
        client = self.client_of(storage.id)
        links: dict[str, Any] = {
            "self": {"href": f"/api/v3/project_storages/{record.id}"},
            "storage": {"href": f"/api/v3/storages/{storage.id}", "title": storage.name},
            "project": {"href": f"/api/v3/projects/{record.project_id}", "title": record.project_name},
            "creator": {"href": f"/api/v3/users/{record.creator_id}", "title": self.user_title(record.creator_id)},
            "projectFolder": {"href": None},
            "open": {"href": f"/api/v3/project_storages/{record.id}/open"},
        }
        if client is not None:
            destination = f"{self.base_url()}/api/v3/project_storages/{record.id}/open"
            query = urlencode({"storage_id": storage.id, "destination_url": destination}, quote_via=quote)
            links["openWithConnectionEnsured"] = {
                "href": f"/oauth_clients/{client.client_id}/ensure_connection?{query}"}
        else:
            links["openWithConnectionEnsured"] = {"href": None}
        return {"_type": "ProjectStorage", "id": record.id, "projectFolderMode": record.project_folder_mode,
                "createdAt": iso8601(record.created_at), "updatedAt": iso8601(record.updated_at), "_links": links}

    @staticmethod
    def _parse_project_storage_filters(raw: str | None) -> list[tuple[str, str, list[str]]] | None:
        if raw is None:
            return []
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(parsed, list):
            return None
        result: list[tuple[str, str, list[str]]] = []
        for entry in parsed:
            if not isinstance(entry, dict) or len(entry) != 1:
                return None
            (name, spec), = entry.items()
            if name not in ("storageId", "projectId") or not isinstance(spec, dict):
                return None
            operator, values = spec.get("operator"), spec.get("values")
            if operator not in ("=", "!") or not isinstance(values, list):
                return None
            result.append((name, operator, [str(v) for v in values]))
        return result

    def list_project_storages(self, request: Request, caller: Caller) -> Response:
        filters = self._parse_project_storage_filters(request.query_one("filters"))
        if filters is None:
            return invalid_query()
        with self.lock:
            elements = []
            for record in sorted(self.project_storages.values(), key=lambda r: r.id):
                if caller.anonymous:
                    continue
                values = {"storageId": str(record.storage_id), "projectId": str(record.project_id)}
                if all((values[name] in wanted) == (operator == "=") for name, operator, wanted in filters):
                    elements.append(self.render_project_storage(record))
        body = {"_type": "Collection", "total": len(elements), "count": len(elements),
                "_links": {"self": {"href": "/api/v3/project_storages"}}, "_embedded": {"elements": elements}}
        return Response.json(200, body, content_type=HAL_JSON)

    def show_project_storage(self, record_id: int, caller: Caller) -> Response:
        with self.lock:
            record = self.project_storages.get(record_id)
            if record is None or caller.anonymous:
                return not_found()
            return Response.json(200, self.render_project_storage(record), content_type=HAL_JSON)

    # --- inspection ---

    def state(self) -> list[dict[str, Any]]:
        result = []
        for storage in sorted(self.storages.values(), key=lambda s: s.id):
            application = self.application_of(storage)
            client = self.client_of(storage.id)
            result.append({
                "id": storage.id,
                "name": storage.name,
                "host": storage.host,
                "authentication_method": storage.authentication_method,
                "oauth_application_id": application.id if application else None,
                "oauth_application_client_id": application.uid if application else None,
                "oauth_application_redirect_uri": application.redirect_uri if application else None,
                "oauth_application_live_tokens": self.oauth.live_tokens(application.id) if application else 0,
                "oauth_client_id": client.id if client else None,
                "oauth_client_client_id": client.client_id if client else None,
                "oauth_client_user_tokens": len(client.user_tokens) if client else 0,
                "has_application_password": storage.automatic_management_enabled,
                "configured": self.configured(storage),
                "project_storages": [p.id for p in self.project_storages.values() if p.storage_id == storage.id],
            })
        return result

    def record_secret(self, value: str) -> None:
        self._issued.append(value)

    def issued_secrets(self) -> list[str]:
        return list(self._issued)


