"""Crypto-shredding: personal data sealed in events is unreadable once the key is destroyed."""

import uuid

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy.orm import Session

from shared.events import NewEvent
from shared.eventstore import EventStore
from shared.sealing import ERASED, Vault, is_sealed


def test_sealed_fields_read_back_until_the_subject_is_erased(service_engine):
    engine = service_engine("customers")
    subject = str(uuid.uuid4())
    with Session(engine) as session:
        vault = Vault(session)
        payload = vault.seal_fields(
            subject,
            {"customer_id": subject, "name": "张伟", "email": "zw@example.com"},
            ("name", "email"),
        )
        assert payload["customer_id"] == subject
        assert is_sealed(payload["name"]) and "张伟" not in str(payload)
        EventStore(session).append("customer", subject, [NewEvent("test.sealed", payload)], 0)
        session.commit()
    with Session(engine) as session:
        stored = EventStore(session).load_stream(subject)[0].payload
        assert Vault(session).unseal_fields(stored)["name"] == "张伟"
        assert Vault(session).destroy(subject) is True
        session.commit()
    with Session(engine) as session:
        stored = EventStore(session).load_stream(subject)[0].payload
        erased = Vault(session).unseal_fields(stored)
        assert erased == {"customer_id": subject, "name": ERASED, "email": ERASED}
        assert Vault(session).destroy(subject) is False


def test_a_value_sealed_for_one_subject_cannot_be_opened_as_another(service_engine):
    engine = service_engine("customers")
    with Session(engine) as session:
        vault = Vault(session)
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        sealed = vault.seal(a, "secret")
        vault.key(b, create=True)
        sealed["$sealed"]["subject"] = b
        with pytest.raises(InvalidTag):  # the subject is bound into the ciphertext
            vault.unseal(sealed)
        session.rollback()
