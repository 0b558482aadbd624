"""Scale tests reuse the admin fixtures (a logged-in site admin)."""
from tests.admin.conftest import admin_client  # noqa: F401
