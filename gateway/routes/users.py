"""Staff accounts, administered by admins."""

from gateway import schemas
from gateway.operations import ANY_ROLE, Context, Reply, op

ADMIN = frozenset({"admin"})
USERS = {"tag": "users", "roles": ADMIN, "resource": "user"}


@op(
    "GET",
    "/users",
    operation_id="listUsers",
    summary="List and search users",
    query=schemas.UserListQuery,
    response=schemas.UserPage,
    **USERS,
)
def list_users(ctx: Context) -> Reply:
    return Reply(ctx.call("users", "list_users", **ctx.query))


@op(
    "GET",
    "/users/names",
    operation_id="userNames",
    summary="Names of colleagues by id (owners, actors) or of every active user of a role "
    "(to pick an owner by name), for every signed-in role",
    query=schemas.DisplayNamesQuery,
    response=schemas.DisplayNames,
    tag="users",
    roles=ANY_ROLE,
    resource="user",
)
def user_names(ctx: Context) -> Reply:
    if "role" in ctx.query:
        return Reply({"names": ctx.call("users", "names_by_role", role=ctx.query["role"])})
    return Reply({"names": ctx.call("users", "display_names", user_ids=ctx.query["id"])})


@op(
    "POST",
    "/users",
    operation_id="createUser",
    summary="Create a user",
    body=schemas.CreateUserRequest,
    response=schemas.User,
    status=201,
    audit="users.create",
    errors=(400, 409),
    **USERS,
)
def create_user(ctx: Context) -> Reply:
    user = ctx.call("users", "create_user", actor=ctx.actor, **ctx.body)
    return Reply(
        user,
        status=201,
        resource_id=user["id"],
        headers={"Location": f"/api/v1/users/{user['id']}"},
    )


@op(
    "GET",
    "/users/<user_id>",
    operation_id="getUser",
    summary="Read a user",
    response=schemas.User,
    etag=True,
    errors=(404,),
    **USERS,
)
def get_user(ctx: Context) -> Reply:
    return Reply(ctx.call("users", "get_user", user_id=ctx.path["user_id"]))


@op(
    "PATCH",
    "/users/<user_id>",
    operation_id="updateUser",
    summary="Edit a user's profile",
    body=schemas.ProfileChanges,
    response=schemas.User,
    etag=True,
    audit="users.update",
    errors=(400, 404, 409, 412, 428),
    **USERS,
)
def update_user(ctx: Context) -> Reply:
    user = ctx.call(
        "users",
        "update_profile",
        actor=ctx.actor,
        user_id=ctx.path["user_id"],
        changes=ctx.body,
        expected_version=ctx.if_match(),
    )
    return Reply(user)


@op(
    "POST",
    "/users/<user_id>/role",
    operation_id="changeUserRole",
    summary="Change a user's role",
    body=schemas.RoleChange,
    response=schemas.User,
    audit="users.change_role",
    errors=(400, 404, 422),
    **USERS,
)
def change_role(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "users",
            "change_role",
            actor=ctx.actor,
            user_id=ctx.path["user_id"],
            role=ctx.body["role"],
        )
    )


@op(
    "POST",
    "/users/<user_id>/deactivate",
    operation_id="deactivateUser",
    summary="Deactivate a user and end their sessions",
    response=schemas.User,
    audit="users.deactivate",
    errors=(404, 422),
    **USERS,
)
def deactivate(ctx: Context) -> Reply:
    return Reply(ctx.call("users", "deactivate", actor=ctx.actor, user_id=ctx.path["user_id"]))


@op(
    "POST",
    "/users/<user_id>/reactivate",
    operation_id="reactivateUser",
    summary="Reactivate a user",
    response=schemas.User,
    audit="users.reactivate",
    errors=(404, 422),
    **USERS,
)
def reactivate(ctx: Context) -> Reply:
    return Reply(ctx.call("users", "reactivate", actor=ctx.actor, user_id=ctx.path["user_id"]))


@op(
    "POST",
    "/users/<user_id>/password",
    operation_id="resetUserPassword",
    summary="Set a new password for a user",
    body=schemas.ResetPasswordRequest,
    status=204,
    audit="users.reset_password",
    errors=(400, 404),
    **USERS,
)
def reset_password(ctx: Context) -> Reply:
    ctx.call(
        "users",
        "reset_password",
        actor=ctx.actor,
        user_id=ctx.path["user_id"],
        new_password=ctx.body["new_password"],
    )
    return Reply(status=204)


@op(
    "POST",
    "/users/<user_id>/erase",
    operation_id="eraseUser",
    summary="Erase a user's personal data for good",
    body=schemas.EraseRequest,
    response=schemas.User,
    audit="users.erase",
    errors=(404, 422),
    **USERS,
)
def erase(ctx: Context) -> Reply:
    """Deactivates the account, ends its sessions and destroys the key that seals the user's
    personal data in the event log (crypto-shredding)."""
    return Reply(ctx.call("users", "erase_user", actor=ctx.actor, user_id=ctx.path["user_id"]))


@op(
    "POST",
    "/users/<user_id>/mfa/disable",
    operation_id="disableUserTotp",
    summary="Remove a user's second factor (confirm with your own password)",
    body=schemas.PasswordConfirm,
    status=204,
    audit="users.disable_totp",
    errors=(400, 404, 422),
    **USERS,
)
def disable_totp(ctx: Context) -> Reply:
    ctx.call(
        "users",
        "totp_disable",
        actor=ctx.actor,
        user_id=ctx.path["user_id"],
        password=ctx.body["password"],
    )
    return Reply(status=204)
