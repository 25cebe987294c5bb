"""A representative set of the gateway scenarios again, on the real MariaDB.

The scenarios are the SQLite ones, imported; only ``database_url`` changes, to a fresh
migrated database of the test server. They cover the writes whose SQL differs most between
the two (sessions, their listing and bulk revocation, throttling, workspace timestamps, the
OAuth upsert, run guards on the unique ``active_key``, the options blob and its ETag, and
the route-by-route tenancy sweep).
"""

from __future__ import annotations

import pytest
from test_gateway_auth import (
    test_api_token_is_shown_once_listed_and_revocable,
    test_logout_revokes_the_session_on_the_server,
    test_repeated_failures_throttle_login_with_retry_after,
)
from test_gateway_bindings import (
    test_delete_removes_binding_and_its_schedules,
    test_oauth_round_trip_stores_encrypted_token_and_starts_meta_sync,
    test_revoke_calls_tiktok_then_marks_revoked_and_stays_readable,
)
from test_gateway_catalog import (
    test_products_are_paged_sorted_and_exclude_tombstones,
    test_products_filter_by_advertiser_eligibility_and_status,
)
from test_gateway_config import test_saving_auto_sync_creates_the_product_schedule
from test_gateway_options import (
    test_if_none_match_forms_answer_304,
    test_refresh_returns_new_document_once_it_is_stored,
    test_refresh_timeout_answers_current_document_with_run_and_key,
    test_refresh_wait_holds_no_database_connection,
)
from test_gateway_sessions import (
    browser,
    test_list_shows_active_sessions_newest_first_and_marks_the_current_one,
    test_revoke_others_keeps_the_current_session,
)
from test_gateway_sync import (
    test_idempotency_key_header_returns_the_same_run,
    test_product_sync_in_progress_joins_or_conflicts,
    test_product_sync_validation_codes,
    test_product_sync_within_cooldown_is_429,
)
from test_gateway_tenancy import (
    tenants,
    test_every_route_hides_other_tenants_workspace_and_objects,
)
from test_gateway_workspaces import test_created_workspace_is_listed_like_me_lists_it

pytestmark = pytest.mark.mariadb


@pytest.fixture
def database_url(mariadb_url: str) -> str:
    return mariadb_url


__all__ = [
    "browser",
    "tenants",
    "test_api_token_is_shown_once_listed_and_revocable",
    "test_created_workspace_is_listed_like_me_lists_it",
    "test_delete_removes_binding_and_its_schedules",
    "test_every_route_hides_other_tenants_workspace_and_objects",
    "test_idempotency_key_header_returns_the_same_run",
    "test_if_none_match_forms_answer_304",
    "test_list_shows_active_sessions_newest_first_and_marks_the_current_one",
    "test_logout_revokes_the_session_on_the_server",
    "test_oauth_round_trip_stores_encrypted_token_and_starts_meta_sync",
    "test_product_sync_in_progress_joins_or_conflicts",
    "test_product_sync_validation_codes",
    "test_product_sync_within_cooldown_is_429",
    "test_products_are_paged_sorted_and_exclude_tombstones",
    "test_products_filter_by_advertiser_eligibility_and_status",
    "test_refresh_returns_new_document_once_it_is_stored",
    "test_refresh_timeout_answers_current_document_with_run_and_key",
    "test_refresh_wait_holds_no_database_connection",
    "test_repeated_failures_throttle_login_with_retry_after",
    "test_revoke_calls_tiktok_then_marks_revoked_and_stays_readable",
    "test_revoke_others_keeps_the_current_session",
    "test_saving_auto_sync_creates_the_product_schedule",
]
