"""Which behaviour of integration_openproject belongs to which release (contract/nextcloud.md §13).

The emulator is configured with an app version string (``"3.1.1"`` by default, ``"2.8.1"``,
``"3.2.0-dev"``…); every version-dependent branch asks one of the properties below instead of
comparing numbers in place, so the matrix of §13 lives in exactly one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class AppVersion:
    major: int
    minor: int
    patch: int

    @staticmethod
    def parse(text: str) -> "AppVersion":
        match = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
        if not match:
            raise ValueError(f"not an integration_openproject version: {text!r}")
        return AppVersion(int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0))

    @property
    def tuple(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def at_least(self, major: int, minor: int = 0, patch: int = 0) -> bool:
        return self.tuple >= (major, minor, patch)

    # --- features, newest last ------------------------------------------------------------------

    @property
    def has_setup_routes(self) -> bool:  # POST/PATCH/DELETE /setup
        return self.at_least(2, 2)

    @property
    def has_project_folders(self) -> bool:  # the two flags and /project-folder-status
        return self.at_least(2, 4)

    @property
    def has_capability_block(self) -> bool:
        return self.at_least(2, 4, 3)

    @property
    def has_terms_of_service_route(self) -> bool:
        return self.at_least(2, 6, 1)

    @property
    def has_check_admin_config(self) -> bool:
        return self.at_least(2, 7)

    @property
    def has_ocs_api(self) -> bool:  # OCS api/v1/url
        return self.at_least(2, 8)

    @property
    def has_authorization_method(self) -> bool:
        """2.9.0 introduced ``authorization_method``, the OIDC keys and SettingsService."""
        return self.at_least(2, 9)

    @property
    def delete_removes_app_password(self) -> bool:
        """Up to 2.8.x DELETE sent ``setup_app_password: false`` (§7)."""
        return not self.has_authorization_method

    @property
    def has_no_automatic_folders_group(self) -> bool:
        """2.10.0: group OpenProjectNoAutomaticProjectFolders and the wording "team folder"."""
        return self.at_least(2, 10)

    @property
    def has_status_key(self) -> bool:
        """``status`` in POST/PATCH answers: 2.11.4 to 2.11.x and 3.1.1 and later (§5.2)."""
        return (self.at_least(2, 11, 4) and not self.at_least(3)) or self.at_least(3, 1, 1)

    @property
    def strict_enums(self) -> bool:
        """2.11.4 and 3.1.1 compare enum values strictly; earlier releases used PHP's loose ==."""
        return self.has_status_key

    @property
    def oidc_creates_nextcloud_client(self) -> bool:
        """Up to 3.1.0 and in 2.11.0 to 2.11.3 an OIDC setup also created an NC OAuth client."""
        return self.has_authorization_method and not self.has_status_key

    @property
    def has_new_error_messages(self) -> bool:
        """3.2.0-dev (HEAD): "Improve integration setup error messages" (§4.3)."""
        return self.at_least(3, 2)

    @property
    def empty_method_means_oauth2(self) -> bool:
        """HEAD: after a reset, a PATCH without ``authorization_method`` falls back to oauth2 (§6)."""
        return self.at_least(3, 2)
