"""The signed-in user's own account: profile, password, two-factor sign-in."""

from gateway import schemas
from gateway.operations import ANY_ROLE, Context, Reply, op

MINE = {"tag": "me", "roles": ANY_ROLE, "api_keys": False, "mfa_setup": True}


@op(
    "GET",
    "/me",
    operation_id="getMe",
    summary="Read your profile",
    response=schemas.User,
    etag=True,
    **MINE,
)
def get_me(ctx: Context) -> Reply:
    return Reply(ctx.call("users", "get_user", user_id=ctx.principal.id))


@op(
    "PATCH",
    "/me",
    operation_id="updateMe",
    summary="Edit your profile",
    body=schemas.ProfileChanges,
    response=schemas.User,
    etag=True,
    audit="me.update",
    resource="user",
    errors=(400, 409, 412, 428),
    **MINE,
)
def update_me(ctx: Context) -> Reply:
    user = ctx.call(
        "users",
        "update_profile",
        actor=ctx.actor,
        user_id=ctx.principal.id,
        changes=ctx.body,
        expected_version=ctx.if_match(),
    )
    return Reply(user, resource_id=user["id"])


@op(
    "POST",
    "/me/password",
    operation_id="changeMyPassword",
    summary="Change your password",
    body=schemas.ChangePasswordRequest,
    status=204,
    audit="me.change_password",
    resource="user",
    errors=(400,),
    **MINE,
)
def change_password(ctx: Context) -> Reply:
    ctx.call("users", "change_password", actor=ctx.actor, user_id=ctx.principal.id, **ctx.body)
    return Reply(status=204, resource_id=ctx.principal.id)


@op(
    "POST",
    "/me/mfa/totp",
    operation_id="beginTotp",
    summary="Start enrolling an authenticator app",
    response=schemas.TotpEnrolment,
    audit="me.totp_begin",
    resource="user",
    **MINE,
)
def totp_begin(ctx: Context) -> Reply:
    return Reply(
        ctx.call("users", "totp_begin", actor=ctx.actor, user_id=ctx.principal.id),
        resource_id=ctx.principal.id,
    )


@op(
    "POST",
    "/me/mfa/totp/confirm",
    operation_id="confirmTotp",
    summary="Finish enrolling with a code from the app",
    body=schemas.TotpConfirm,
    response=schemas.RecoveryCodes,
    audit="me.totp_confirm",
    resource="user",
    errors=(400,),
    **MINE,
)
def totp_confirm(ctx: Context) -> Reply:
    codes = ctx.call(
        "users", "totp_confirm", actor=ctx.actor, user_id=ctx.principal.id, code=ctx.body["code"]
    )
    return Reply(codes, resource_id=ctx.principal.id)


@op(
    "DELETE",
    "/me/mfa/totp",
    operation_id="disableTotp",
    summary="Turn two-factor sign-in off",
    body=schemas.PasswordConfirm,
    status=204,
    audit="me.totp_disable",
    resource="user",
    errors=(400, 422),
    **MINE,
)
def totp_disable(ctx: Context) -> Reply:
    ctx.call(
        "users",
        "totp_disable",
        actor=ctx.actor,
        user_id=ctx.principal.id,
        password=ctx.body["password"],
    )
    return Reply(status=204, resource_id=ctx.principal.id)
