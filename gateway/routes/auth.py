"""Sign-in, token refresh, sign-out and self-registration."""

from gateway import schemas
from gateway.operations import PUBLIC, Context, Reply, op


def _client(ctx: Context) -> dict:
    return {
        "client_ip": ctx.client_ip,
    }


@op(
    "POST",
    "/auth/login",
    operation_id="login",
    summary="Sign in",
    tag="auth",
    roles=PUBLIC,
    body=schemas.LoginRequest,
    response=schemas.Tokens,
    errors=(400, 401, 429),
)
def login(ctx: Context) -> Reply:
    tokens = ctx.call(
        "users",
        "login",
        email=ctx.body["email"],
        password=ctx.body["password"],
        otp=ctx.body.get("otp"),
        user_agent=ctx.request.headers.get("User-Agent", "")[:300],
        **_client(ctx),
    )
    return Reply(tokens)


@op(
    "POST",
    "/auth/refresh",
    operation_id="refreshTokens",
    summary="Exchange a refresh token for new tokens",
    tag="auth",
    roles=PUBLIC,
    body=schemas.RefreshRequest,
    response=schemas.Tokens,
    errors=(400, 401),
)
def refresh(ctx: Context) -> Reply:
    return Reply(
        ctx.call("users", "refresh", refresh_token=ctx.body["refresh_token"], **_client(ctx))
    )


@op(
    "POST",
    "/auth/logout",
    operation_id="logout",
    summary="Sign out (revoke the session of a refresh token)",
    tag="auth",
    roles=PUBLIC,
    body=schemas.RefreshRequest,
    status=204,
    errors=(400,),
)
def logout(ctx: Context) -> Reply:
    ctx.call("users", "logout", refresh_token=ctx.body["refresh_token"])
    return Reply(status=204)


@op(
    "POST",
    "/auth/register",
    operation_id="register",
    summary="Create your own account (when self-registration is on)",
    tag="auth",
    roles=PUBLIC,
    body=schemas.RegisterRequest,
    response=schemas.User,
    status=201,
    errors=(400, 403, 409),
)
def register(ctx: Context) -> Reply:
    user = ctx.call("users", "register", **ctx.body, **_client(ctx))
    return Reply(user, status=201, resource_id=user["id"])


@op(
    "GET",
    "/auth/config",
    operation_id="getAuthConfig",
    summary="What the sign-in page needs to know",
    tag="auth",
    roles=PUBLIC,
    response=schemas.AuthConfig,
)
def auth_config(ctx: Context) -> Reply:
    settings = ctx.call("users", "get_security_settings")
    return Reply({"self_registration": settings["self_registration"]})
