"""TOTP secrets encrypted at rest.

``user_totp.secret`` (base32 in plain text) becomes ``user_totp.secret_encrypted`` (bytea:
AES-256-GCM under a key derived from ``CMS_SECRET_KEY``, the user id as associated data; see
``services.users.totp.encrypt_secret``). Rows that exist are converted (both ways), so this
must run with the deployment's ``CMS_SECRET_KEY``.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from sqlalchemy import text

from services.users.totp import decrypt_secret, encrypt_secret

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE user_totp ADD COLUMN secret_encrypted bytea")
    conn = op.get_bind()
    for row in conn.execute(text("SELECT user_id, secret FROM user_totp")).all():
        conn.execute(
            text("UPDATE user_totp SET secret_encrypted = :stored WHERE user_id = :user_id"),
            {"stored": encrypt_secret(row.secret, str(row.user_id)), "user_id": row.user_id},
        )
    op.execute("ALTER TABLE user_totp ALTER COLUMN secret_encrypted SET NOT NULL")
    op.execute("ALTER TABLE user_totp DROP COLUMN secret")


def downgrade() -> None:
    op.execute("ALTER TABLE user_totp ADD COLUMN secret text")
    conn = op.get_bind()
    for row in conn.execute(text("SELECT user_id, secret_encrypted FROM user_totp")).all():
        conn.execute(
            text("UPDATE user_totp SET secret = :secret WHERE user_id = :user_id"),
            {
                "secret": decrypt_secret(row.secret_encrypted, str(row.user_id)),
                "user_id": row.user_id,
            },
        )
    op.execute("ALTER TABLE user_totp ALTER COLUMN secret SET NOT NULL")
    op.execute("ALTER TABLE user_totp DROP COLUMN secret_encrypted")
