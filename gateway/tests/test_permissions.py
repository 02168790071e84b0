"""Every API operation by every role, and every kind of bad credential.

EXPECTED is the permission table the product promises. It must name every operation: adding
an operation without declaring who may call it makes this test fail.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest

from gateway import routes  # noqa: F401 - registers every operation
from gateway.operations import ROLES, registry

ADMIN = {"admin"}
MANAGERS = {"admin", "manager"}
WRITERS = {"admin", "manager", "sales"}
ANY = set(ROLES)
PUBLIC = "public"

EXPECTED = {
    "login": PUBLIC,
    "refreshTokens": PUBLIC,
    "logout": PUBLIC,
    "register": PUBLIC,
    "getAuthConfig": PUBLIC,
    "getMe": ANY,
    "updateMe": ANY,
    "changeMyPassword": ANY,
    "beginTotp": ANY,
    "confirmTotp": ANY,
    "disableTotp": ANY,
    "listUsers": ADMIN,
    "userNames": ANY,  # colleagues' names only (owners, actors)
    "createUser": ADMIN,
    "getUser": ADMIN,
    "updateUser": ADMIN,
    "changeUserRole": ADMIN,
    "deactivateUser": ADMIN,
    "reactivateUser": ADMIN,
    "resetUserPassword": ADMIN,
    "eraseUser": ADMIN,
    "disableUserTotp": ADMIN,
    "getSecuritySettings": ADMIN,
    "updateSecuritySettings": ADMIN,
    "listApiKeys": ADMIN,
    "createApiKey": ADMIN,
    "revokeApiKey": ADMIN,
    "listAudit": ADMIN,
    "searchCustomers": ANY,
    "createCustomer": WRITERS,
    "exportCustomers": ANY,
    "getCustomer": ANY,
    "updateCustomer": WRITERS,
    "tagCustomer": WRITERS,
    "assignCustomer": MANAGERS,
    "recordConsent": WRITERS,
    "listConsents": ANY,
    "archiveCustomer": WRITERS,
    "restoreCustomer": WRITERS,
    "mergeCustomers": MANAGERS,
    "undoMerge": MANAGERS,
    "customerTimeline": ANY,
    "exportCustomerData": MANAGERS,
    "eraseCustomer": ADMIN,
    "listCustomerAttributes": ANY,
    "defineCustomerAttribute": ADMIN,
    "setCustomerAttributes": WRITERS,
    "importCustomers": MANAGERS,
    "listImports": MANAGERS,
    "getImport": MANAGERS,
    "listImportRejections": MANAGERS,
    "exportImportRejections": MANAGERS,
    "revertImport": MANAGERS,
    "readEventFeed": {"admin", "manager", "analyst"},
    "bulkCustomers": WRITERS,
    "bulkOrders": WRITERS,
    "listWebhooks": ADMIN,
    "createWebhook": ADMIN,
    "getWebhook": ADMIN,
    "updateWebhook": ADMIN,
    "deleteWebhook": ADMIN,
    "resumeWebhook": ADMIN,
    "listWebhookDeliveries": ADMIN,
    "getWebhookDelivery": ADMIN,
    "resendWebhookDelivery": ADMIN,
    "listProducts": ANY,
    "createProduct": MANAGERS,
    "getProduct": ANY,
    "updateProduct": MANAGERS,
    "listOrders": ANY,
    "placeOrder": WRITERS,
    "orderChanges": ANY,
    "getOrder": ANY,
    "updateOrder": WRITERS,
    "fulfilOrder": WRITERS,
    "completeOrder": WRITERS,
    "cancelOrder": WRITERS,
    "returnOrder": WRITERS,
    "orderHistory": ANY,
    "importOrders": MANAGERS,
    "listOrderImports": MANAGERS,
    "getOrderImport": MANAGERS,
    "createPayment": WRITERS,
    "recordManualPayment": WRITERS,
    "listPayments": ANY,
    "exportPayments": {"admin", "manager", "analyst"},
    "getPayment": ANY,
    "getPaymentReconciliation": MANAGERS,
    "exportPaymentReconciliation": MANAGERS,
    "capturePayment": WRITERS,
    "cancelPayment": WRITERS,
    "refundPayment": MANAGERS,
    "confirmPayment": WRITERS,
    "simulateSandboxScan": WRITERS,
    "receiveSandboxWebhook": PUBLIC,
    "analyticsOverview": {"admin", "manager", "analyst"},
    "analyticsRevenue": {"admin", "manager", "analyst"},
    "analyticsRevenueByMethod": {"admin", "manager", "analyst"},
    "analyticsSalesByProduct": {"admin", "manager", "analyst"},
    "analyticsSalesByCategory": {"admin", "manager", "analyst"},
    "analyticsPaymentRates": {"admin", "manager", "analyst"},
    "analyticsCohorts": {"admin", "manager", "analyst"},
    "analyticsCustomers": {"admin", "manager", "analyst"},
    "analyticsCustomer": {"admin", "manager", "analyst"},
    "analyticsSegments": {"admin", "manager", "analyst"},
    "analyticsSegmentCustomers": {"admin", "manager", "analyst"},
    "exportSegment": {"admin", "manager", "analyst"},
    "analyticsClv": {"admin", "manager", "analyst"},
    "analyticsClvPredictions": {"admin", "manager", "analyst"},
    "analyticsFreshness": {"admin", "manager", "analyst"},
    "analyticsMetrics": {"admin", "manager", "analyst"},
    "rebuildAnalytics": ADMIN,
    "getAnalyticsRebuild": ADMIN,
}

PASSWORD = "Plenty-Long-Passphrase-7"  # the one gateway/tests/conftest.py creates users with


def test_every_operation_has_a_declared_permission():
    declared = {
        op_id: (PUBLIC if op.public else set(op.roles)) for op_id, op in registry.operations.items()
    }
    assert set(declared) == set(EXPECTED), "an operation was added or removed: update EXPECTED"
    assert declared == EXPECTED


@pytest.fixture(scope="module")
def world(api, admin):
    """An admin, one user per role, a target user and API keys to act on."""
    tokens = {"admin": admin[1]}
    for role in ("manager", "sales", "analyst"):
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        created = api.call(
            "POST",
            "/api/v1/users",
            token=tokens["admin"],
            json={"email": email, "name": role.title(), "role": role, "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        tokens[role] = api.login(email)["access_token"]
    target = api.call(
        "POST",
        "/api/v1/users",
        token=tokens["admin"],
        json={
            "email": f"target-{uuid.uuid4().hex[:8]}@example.com",
            "name": "Target",
            "role": "sales",
            "password": PASSWORD,
        },
    ).json()
    key = api.call(
        "POST", "/api/v1/api-keys", token=tokens["admin"], json={"name": "erp", "role": "manager"}
    ).json()
    sacrificial = api.call(
        "POST", "/api/v1/api-keys", token=tokens["admin"], json={"name": "old", "role": "sales"}
    ).json()
    customer = api.call(
        "POST",
        "/api/v1/customers",
        token=tokens["admin"],
        json={"kind": "person", "name": "Walk Target", "force": True},
    )
    assert customer.status_code == 201, customer.text
    return {
        "tokens": tokens,
        "target": target,
        "key": key,
        "sacrificial_key": sacrificial,
        "customer": customer.json(),
    }


def _path(operation, world):
    values = {
        "user_id": world["target"]["id"],
        "key_id": world["sacrificial_key"]["id"],
        "customer_id": world["customer"]["id"],
        "merge_id": "00000000-0000-0000-0000-000000000000",
        "import_id": "00000000-0000-0000-0000-000000000000",
        "service": "customers",
        "webhook_id": "00000000-0000-0000-0000-000000000000",
        "delivery_id": "00000000-0000-0000-0000-000000000000",
    }
    path = operation.rule
    for name, value in values.items():
        path = path.replace(f"<{name}>", value)
    return path


def _request(api, operation, world, **credentials):
    # An empty body: allowed callers get 400 (or act on harmless targets), denied ones 403,
    # so walking the table changes nothing that matters.
    kwargs = {"json": {}} if operation.body is not None else {}
    if operation.method == "PATCH":
        kwargs["headers"] = {"If-Match": '"1"'}
    return api.call(operation.method, _path(operation, world), **credentials, **kwargs)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_the_operations_it_is_allowed(api, world, role):
    token = world["tokens"][role]
    wrong = []
    for op_id, operation in registry.operations.items():
        response = _request(api, operation, world, token=token)
        allowed = EXPECTED[op_id] == PUBLIC or role in EXPECTED[op_id]
        if allowed and response.status_code in (401, 403):
            wrong.append(f"{op_id}: {role} refused ({response.status_code})")
        if not allowed and response.status_code != 403:
            wrong.append(f"{op_id}: {role} got {response.status_code}, expected 403")
        elif not allowed and response.json().get("code") == "role_forbidden":
            # says what was refused and who may, where it read "may not revenue over time"
            body = response.json()
            said = f"the {role} role may not use {op_id} ({operation.summary}); allowed: "
            if not body["detail"].startswith(said) or role in body["allowed_roles"]:
                wrong.append(f"{op_id}: {role} told {body['detail']!r}")
        assert response.status_code < 500, f"{op_id}: {response.status_code} {response.text}"
    assert not wrong, "\n".join(wrong)


def _forge(token, **changes):
    """Re-sign a token's claims with the real key (the one the users service derives)."""
    from shared.config import settings

    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    key = hmac.new(settings().secret_key.encode(), b"jwt-access", hashlib.sha256).digest()
    return jwt.encode(claims, key, algorithm="HS256")


def _alg_none(token):
    _header, payload, _ = token.split(".")
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return none.decode().rstrip("=") + "." + payload + "."


def _tampered(token):
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def test_bad_credentials_are_401_on_every_protected_operation(api, world, nameko_config):
    sales_email = f"sales2-{uuid.uuid4().hex[:8]}@example.com"
    api.call(
        "POST",
        "/api/v1/users",
        token=world["tokens"]["admin"],
        json={"email": sales_email, "name": "S", "role": "sales", "password": PASSWORD},
    )
    revoked = api.login(sales_email)
    assert (
        api.call(
            "POST", "/api/v1/auth/logout", json={"refresh_token": revoked["refresh_token"]}
        ).status_code
        == 204
    )
    fresh = world["tokens"]["sales"]
    cases = {
        "missing": None,
        "expired": _forge(fresh, exp=int(time.time()) - 60),
        "revoked": revoked["access_token"],
        "tampered": _tampered(fresh),
        "alg none": _alg_none(fresh),
        "garbage": "not-a-token",
    }
    codes = {
        "expired": "token_expired",
        "revoked": "session_revoked",
        "tampered": "token_invalid",
        "alg none": "token_invalid",
        "garbage": "token_invalid",
        "missing": "authentication_required",
    }
    wrong = []
    for op_id, operation in registry.operations.items():
        if operation.public:
            continue
        for case, token in cases.items():
            response = _request(api, operation, world, token=token)
            if response.status_code != 401:
                wrong.append(f"{op_id} with a {case} token: {response.status_code}")
            elif response.json().get("code") != codes[case]:
                wrong.append(f"{op_id} with a {case} token: code {response.json().get('code')}")
    assert not wrong, "\n".join(wrong)


def test_api_keys_act_with_their_role_and_never_as_a_person(api, world):
    key = world["key"]["key"]
    assert api.call("GET", "/api/v1/me", api_key=key).status_code == 403
    assert api.call("GET", "/api/v1/users", api_key=key).status_code == 403  # role manager
    admin_key = api.call(
        "POST",
        "/api/v1/api-keys",
        token=world["tokens"]["admin"],
        json={"name": "ops", "role": "admin"},
    ).json()
    assert api.call("GET", "/api/v1/users", api_key=admin_key["key"]).status_code == 200
    api.call("POST", f"/api/v1/api-keys/{admin_key['id']}/revoke", token=world["tokens"]["admin"])
    response = api.call("GET", "/api/v1/users", api_key=admin_key["key"])
    assert response.status_code == 401
    assert api.call("GET", "/api/v1/users", api_key="cms_forged").status_code == 401
