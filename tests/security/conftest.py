"""The gateway and every service in this process (the ``api`` fixture of the gateway tests),
and a cast of signed-in people for the abuse tests."""

import uuid

import pytest

from gateway.tests.conftest import PASSWORD, admin, api  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def people(api, admin):  # noqa: F811
    """Tokens and ids: an admin, a manager, two sales users and an analyst."""
    cast = {"admin": {"token": admin[1], "email": admin[0]}}
    for name in ("manager", "sales", "sales2", "analyst"):
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        role = "sales" if name.startswith("sales") else name
        created = api.call(
            "POST",
            "/api/v1/users",
            token=admin[1],
            json={"email": email, "name": name, "role": role, "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        tokens = api.login(email)
        cast[name] = {
            "token": tokens["access_token"],
            "refresh": tokens["refresh_token"],
            "id": created.json()["id"],
            "email": email,
        }
    me = api.call("GET", "/api/v1/me", token=admin[1]).json()
    cast["admin"]["id"] = me["id"]
    return cast
