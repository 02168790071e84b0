"""The customers domain: the ``Customer`` aggregate (stream ``customer`` / ``<id>``) and the
``AttributeDefinition`` aggregate (stream ``attribute`` / ``attribute:<key>``). Pure: no I/O,
no clock (callers pass ids and facts read under a lock).

Commands check the rules and return the events that record the decision, as ``(event type,
payload)`` pairs with *plain* personal values; ``personal.py`` seals them on the way into the
log. ``apply`` folds *opened* events: personal values in plain, or None once the customer was
erased and their key destroyed (an erased customer's final state is the placeholders that
``customer.erased`` sets, whatever the earlier events open to).

Merging: the target absorbs what the source has and the target lacks (e-mail addresses,
phone numbers, addresses, tags, preference lists, attribute values, consents, and a few empty
scalars); ``customer.merged`` on the target records exactly what was absorbed, and the source
keeps its own record untouched (status ``merged``, ``merged_into`` the target). Undoing the
merge removes from the target what the merge added (where it is still there unchanged) and
gives the source its previous status back: without later edits, both are exactly as before.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import BadRequest, RuleViolation
from shared.events import isoformat

Change = tuple[str, dict[str, Any]]

KINDS = ("person", "company")
STATUSES = ("active", "archived", "merged", "erased")
CONSENT_CHANNELS = ("email", "phone", "sms", "wechat", "mail")
PREFERRED_CHANNELS = (*CONSENT_CHANNELS, "none")
EMAIL_LABELS = ("work", "home", "other")
PHONE_LABELS = ("mobile", "work", "home", "other")
ADDRESS_LABELS = ("home", "work", "billing", "shipping", "other")
CONSENT_METHODS = ("web_form", "phone", "paper", "import", "email", "in_person", "api", "other")
ATTRIBUTE_TYPES = ("string", "number", "boolean", "date", "choice")
#: Why a customer was archived, when it was not by hand.
ARCHIVE_REASONS = ("import_reverted",)

#: Fields ``customer.updated`` carries (owner, tags, consents and attributes have their own
#: events; preferences have ``customer.preferences_updated``).
PROFILE_FIELDS = (
    "kind",
    "name",
    "company",
    "emails",
    "phones",
    "addresses",
    "preferred_channel",
    "language",
    "source",
    "external_id",
)
LIST_FIELDS = ("emails", "phones", "addresses")
PREFERENCE_FIELDS = ("categories", "brands", "price_min", "price_max", "currency", "notes")
ADDRESS_PARTS = ("country", "region", "city", "district", "street", "postal_code")
#: Empty scalars a merge fills from the source.
MERGE_SCALARS = ("company", "preferred_channel", "source")
PRICE_FIELDS = ("price_min", "price_max", "currency")

#: What an erased customer's name reads as.
ERASED_NAME = "(erased)"


def empty_preferences() -> dict[str, Any]:
    return {
        "categories": [],
        "brands": [],
        "price_min": None,
        "price_max": None,
        "currency": None,
        "notes": None,
    }


def _rule(detail: str, code: str) -> RuleViolation:
    return RuleViolation(detail, {"code": code})


def email_key(entry: Mapping[str, Any]) -> str:
    return str(entry["address"]).lower()


def phone_key(entry: Mapping[str, Any]) -> str:
    return str(entry["number"])


def address_key(entry: Mapping[str, Any]) -> tuple:
    return tuple((entry.get(part) or "").strip().lower() for part in ADDRESS_PARTS)


LIST_KEYS = {"emails": email_key, "phones": phone_key, "addresses": address_key}


def preference_errors(preferences: Mapping[str, Any]) -> dict[str, list[str]]:
    """Rules over the preferences as a whole (after a partial change)."""
    errors: dict[str, list[str]] = {}
    price_min, price_max = preferences.get("price_min"), preferences.get("price_max")
    if (price_min is not None or price_max is not None) and not preferences.get("currency"):
        errors["currency"] = ["Required when a price is given."]
    if price_min is not None and price_max is not None and price_min > price_max:
        errors["price_max"] = ["Must not be less than price_min."]
    return errors


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list) else []


@dataclass
class Customer:
    id: str
    version: int = 0
    kind: str = "person"
    name: str = ""
    company: str | None = None
    emails: list[dict[str, Any]] = field(default_factory=list)
    phones: list[dict[str, Any]] = field(default_factory=list)
    addresses: list[dict[str, Any]] = field(default_factory=list)
    preferred_channel: str | None = None
    language: str = "zh-CN"
    preferences: dict[str, Any] = field(default_factory=empty_preferences)
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    owner_id: str | None = None
    source: str | None = None
    external_id: str | None = None
    consents: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "active"
    merged_into: str | None = None
    #: The status a merged source had before the merge (what undoing it restores).
    status_before_merge: str | None = None
    #: Merges this customer absorbed and that are not undone: merge id → source id, absorbed.
    merges: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    erased_at: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.created_at is not None

    @property
    def erased(self) -> bool:
        return self.status == "erased"

    @property
    def default_region(self) -> str:
        """Where national phone numbers are read from: the primary address's country."""
        return default_region(self.addresses)

    def record(self) -> dict[str, Any]:
        """The current record: what the read model holds (without its search columns). A
        snapshot of the containers (the entries inside are shared: do not change them)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "company": self.company,
            "emails": list(self.emails),
            "phones": list(self.phones),
            "addresses": list(self.addresses),
            "preferred_channel": self.preferred_channel,
            "language": self.language,
            "preferences": {**self.preferences},
            "tags": list(self.tags),
            "attributes": dict(self.attributes),
            "owner_id": self.owner_id,
            "source": self.source,
            "external_id": self.external_id,
            "consents": dict(self.consents),
            "status": self.status,
            "merged_into": self.merged_into,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "erased_at": self.erased_at,
            "version": self.version,
        }

    # -- folding -----------------------------------------------------------------------------

    @classmethod
    def from_events(cls, customer_id: str, events: Iterable[Any]) -> Customer:
        """Fold opened events (anything with ``type``, ``payload``, ``occurred_at``)."""
        customer = cls(customer_id)
        for event in events:
            customer.apply(event.type, event.payload, event.occurred_at)
        return customer

    def apply(self, event_type: str, payload: Mapping[str, Any], occurred_at: datetime) -> None:
        self.version += 1
        self.updated_at = occurred_at
        handler = getattr(self, "_on_" + event_type.replace("customer.", "", 1), None)
        if handler is not None:
            handler(payload, occurred_at)

    def _on_registered(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.created_at = at
        self.kind = payload["kind"]
        self.name = payload.get("name") or ERASED_NAME
        self.company = payload.get("company")
        for name in LIST_FIELDS:
            setattr(self, name, _list(payload.get(name)))
        self.preferred_channel = payload.get("preferred_channel")
        self.language = payload["language"]
        self.preferences = {**empty_preferences(), **(payload.get("preferences") or {})}
        self.tags = sorted(set(payload.get("tags") or ()))
        self.attributes = dict(payload.get("attributes") or {})
        self.owner_id = payload.get("owner_id")
        self.source = payload.get("source")
        self.external_id = payload.get("external_id")
        self.status = "active"

    def _on_updated(self, payload: Mapping[str, Any], at: datetime) -> None:
        for name, value in payload["changes"].items():
            if name in LIST_FIELDS:
                value = _list(value)
            elif name == "name":
                value = value or ERASED_NAME
            setattr(self, name, value)

    def _on_preferences_updated(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.preferences = {**self.preferences, **payload["changes"]}

    def _on_tagged(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.tags = sorted(set(self.tags) | set(payload["tags"]))

    def _on_untagged(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.tags = sorted(set(self.tags) - set(payload["tags"]))

    def _on_assigned(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.owner_id = payload.get("owner_id")

    def _on_consent_recorded(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.consents[payload["channel"]] = {
            "granted": payload["granted"],
            "at": isoformat(at),
            "method": payload["method"],
        }

    def _on_attributes_updated(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.attributes.update(payload.get("set") or {})
        for key in payload.get("unset") or ():
            self.attributes.pop(key, None)

    def _on_archived(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.status = "archived"

    def _on_restored(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.status = "active"

    def _on_merged(self, payload: Mapping[str, Any], at: datetime) -> None:
        if payload["source_id"] == self.id:
            self.status_before_merge = payload.get("previous_status") or self.status
            self.status = "merged"
            self.merged_into = payload["target_id"]
            return
        absorbed = _readable_absorbed(payload.get("absorbed") or {})
        self._absorb(absorbed)
        self.merges[payload["merge_id"]] = {
            "source_id": payload["source_id"],
            "absorbed": absorbed,
        }

    def _on_merge_undone(self, payload: Mapping[str, Any], at: datetime) -> None:
        if payload["source_id"] == self.id:
            self.status = self.status_before_merge or "active"
            self.status_before_merge = None
            self.merged_into = None
            return
        merge = self.merges.pop(payload["merge_id"], None)
        if merge is not None:
            self._release(merge["absorbed"])

    def _on_erased(self, payload: Mapping[str, Any], at: datetime) -> None:
        self.name = ERASED_NAME
        self.company = None
        self.emails, self.phones, self.addresses = [], [], []
        self.preferences = {**self.preferences, "notes": None}
        self.attributes = {}
        self.external_id = None
        self.merges = {}
        self.status = "erased"
        self.erased_at = at

    # -- merge folding -------------------------------------------------------------------------

    def _absorb(self, absorbed: Mapping[str, Any]) -> None:
        for name in LIST_FIELDS:
            getattr(self, name).extend(copy.deepcopy(absorbed.get(name) or []))
        self.tags = sorted(set(self.tags) | set(absorbed.get("tags") or ()))
        for name in ("categories", "brands"):
            self.preferences[name] = [*self.preferences[name], *(absorbed.get(name) or [])]
        for name in ("price_min", "price_max", "currency", "notes"):
            if absorbed.get(name) is not None:
                self.preferences[name] = absorbed[name]
        self.attributes.update(absorbed.get("attributes") or {})
        self.consents.update(copy.deepcopy(absorbed.get("consents") or {}))
        for name in MERGE_SCALARS:
            if absorbed.get(name) is not None:
                setattr(self, name, absorbed[name])

    def _release(self, absorbed: Mapping[str, Any]) -> None:
        """Take back what a merge added, where it is still there as the merge left it."""
        for name in LIST_FIELDS:
            current = getattr(self, name)
            for entry in absorbed.get(name) or []:
                if entry in current:
                    current.remove(entry)
        self.tags = sorted(set(self.tags) - set(absorbed.get("tags") or ()))
        for name in ("categories", "brands"):
            values = list(self.preferences[name])
            for value in absorbed.get(name) or []:
                if value in values:
                    values.remove(value)
            self.preferences[name] = values
        for name in ("price_min", "price_max", "currency", "notes"):
            if absorbed.get(name) is not None and self.preferences.get(name) == absorbed[name]:
                self.preferences[name] = None
        for key, value in (absorbed.get("attributes") or {}).items():
            if self.attributes.get(key) == value:
                del self.attributes[key]
        for channel, consent in (absorbed.get("consents") or {}).items():
            if self.consents.get(channel) == consent:
                del self.consents[channel]
        for name in MERGE_SCALARS:
            if absorbed.get(name) is not None and getattr(self, name) == absorbed[name]:
                setattr(self, name, None)

    # -- commands ----------------------------------------------------------------------------

    def _require_changeable(self) -> None:
        if self.status == "erased":
            raise _rule("this customer was erased and cannot change any more", "customer_erased")
        if self.status == "merged":
            raise _rule(
                "this customer was merged into another; change that one instead",
                "customer_merged",
            )

    @staticmethod
    def register(customer_id: str, data: Mapping[str, Any], recorded_by: str | None) -> list:
        """``customer.registered`` with the whole initial record, then one
        ``customer.consent_recorded`` per consent given with it."""
        payload = {
            "customer_id": customer_id,
            "kind": data.get("kind", "person"),
            "name": data["name"],
            "company": data.get("company"),
            "emails": list(data.get("emails") or []),
            "phones": list(data.get("phones") or []),
            "addresses": list(data.get("addresses") or []),
            "preferred_channel": data.get("preferred_channel"),
            "language": data.get("language") or "zh-CN",
            "preferences": {**empty_preferences(), **(data.get("preferences") or {})},
            "tags": sorted(set(data.get("tags") or ())),
            "attributes": dict(data.get("attributes") or {}),
            "owner_id": data.get("owner_id"),
            "source": data.get("source"),
            "external_id": data.get("external_id"),
        }
        errors = preference_errors(payload["preferences"])
        if errors:
            raise BadRequest.for_fields({"preferences": errors})
        changes: list[Change] = [("customer.registered", payload)]
        for consent in data.get("consents") or ():
            changes.append(_consent(customer_id, consent, recorded_by))
        return changes

    def update(self, changes: Mapping[str, Any]) -> list[Change]:
        """``customer.updated`` with the profile fields that really change and
        ``customer.preferences_updated`` with the preference keys that really change."""
        self._require_changeable()
        profile = {
            name: value
            for name, value in changes.items()
            if name in PROFILE_FIELDS and getattr(self, name) != value
        }
        preferences = {
            name: value
            for name, value in (changes.get("preferences") or {}).items()
            if name in PREFERENCE_FIELDS and self.preferences.get(name) != value
        }
        errors = preference_errors({**self.preferences, **preferences})
        if errors and preferences:
            raise BadRequest.for_fields({"preferences": errors})
        decided: list[Change] = []
        if profile:
            decided.append(("customer.updated", {"customer_id": self.id, "changes": profile}))
        if preferences:
            decided.append(
                ("customer.preferences_updated", {"customer_id": self.id, "changes": preferences})
            )
        return decided

    def set_tags(self, add: Iterable[str], remove: Iterable[str]) -> list[Change]:
        add, remove = set(add), set(remove)
        both = sorted(add & remove)
        if both:
            raise BadRequest.for_fields({"remove": [f"Also in add: {', '.join(both)}."]})
        self._require_changeable()
        decided: list[Change] = []
        added = sorted(add - set(self.tags))
        removed = sorted(remove & set(self.tags))
        if added:
            decided.append(("customer.tagged", {"customer_id": self.id, "tags": added}))
        if removed:
            decided.append(("customer.untagged", {"customer_id": self.id, "tags": removed}))
        return decided

    def assign(self, owner_id: str | None) -> list[Change]:
        self._require_changeable()
        if owner_id == self.owner_id:
            return []
        return [
            (
                "customer.assigned",
                {"customer_id": self.id, "owner_id": owner_id, "previous_owner_id": self.owner_id},
            )
        ]

    def record_consent(self, consent: Mapping[str, Any], recorded_by: str | None) -> list:
        """Always recorded, even when it repeats the current state: a renewed consent is a
        fact of its own in the history."""
        self._require_changeable()
        return [_consent(self.id, consent, recorded_by)]

    def set_attributes(self, values: Mapping[str, Any]) -> list[Change]:
        """``values``: key → new value, or None to remove it (values already checked against
        their definitions)."""
        self._require_changeable()
        to_set = {
            key: value
            for key, value in values.items()
            if value is not None and self.attributes.get(key) != value
        }
        to_unset = sorted(key for key, value in values.items() if value is None)
        to_unset = [key for key in to_unset if key in self.attributes]
        if not to_set and not to_unset:
            return []
        return [
            (
                "customer.attributes_updated",
                {"customer_id": self.id, "set": to_set, "unset": to_unset},
            )
        ]

    def archive(self, reason: str | None = None, import_id: str | None = None) -> list[Change]:
        """``reason`` (and the import it undoes, for ``import_reverted``) is recorded when
        given: an archive by hand carries none."""
        self._require_changeable()
        if self.status == "archived":
            return []
        payload: dict[str, Any] = {"customer_id": self.id}
        if reason is not None:
            payload["reason"] = reason
        if import_id is not None:
            payload["import_id"] = import_id
        return [("customer.archived", payload)]

    def restore(self) -> list[Change]:
        self._require_changeable()
        if self.status == "active":
            return []
        return [("customer.restored", {"customer_id": self.id})]

    def erase(self) -> list[Change]:
        """Erasing an erased customer changes nothing (the caller destroys the key)."""
        if self.erased:
            return []
        return [("customer.erased", {"customer_id": self.id})]


def merge(target: Customer, source: Customer, merge_id: str) -> tuple[list[Change], list[Change]]:
    """The events of merging ``source`` into ``target``: (target's, source's)."""
    if target.id == source.id:
        raise BadRequest.for_fields({"source_id": ["Must differ from target_id."]})
    for customer in (target, source):
        customer._require_changeable()
    common = {"merge_id": merge_id, "source_id": source.id, "target_id": target.id}
    return (
        [
            (
                "customer.merged",
                {"customer_id": target.id, **common, "absorbed": absorbable(target, source)},
            )
        ],
        [
            (
                "customer.merged",
                {"customer_id": source.id, **common, "previous_status": source.status},
            )
        ],
    )


def undo_merge(
    target: Customer, source: Customer, merge_id: str
) -> tuple[list[Change], list[Change]]:
    if target.erased or source.erased:
        raise _rule("an erased customer's merge cannot be undone", "customer_erased")
    if merge_id not in target.merges or source.merged_into != target.id:
        raise _rule("this merge was already undone", "merge_undone")
    if target.status == "merged":
        raise _rule(
            "the target was merged into another customer since; undo that merge first",
            "customer_merged",
        )
    common = {"merge_id": merge_id, "source_id": source.id, "target_id": target.id}
    return (
        [("customer.merge_undone", {"customer_id": target.id, **common})],
        [("customer.merge_undone", {"customer_id": source.id, **common})],
    )


def absorbable(target: Customer, source: Customer) -> dict[str, Any]:
    """What ``target`` lacks of ``source``'s record: the payload of a merge."""
    absorbed: dict[str, Any] = {}
    for name in LIST_FIELDS:
        key = LIST_KEYS[name]
        have = {key(entry) for entry in getattr(target, name)}
        new = []
        for entry in getattr(source, name):
            if key(entry) not in have:
                have.add(key(entry))
                new.append({**entry, "primary": bool(entry.get("primary"))})
        if getattr(target, name):  # the target's primary entries stay primary
            new = [{**entry, "primary": False} for entry in new]
        elif new and not any(entry["primary"] for entry in new):
            new[0]["primary"] = True
        absorbed[name] = new
    absorbed["tags"] = sorted(set(source.tags) - set(target.tags))
    for name in ("categories", "brands"):
        absorbed[name] = [
            value for value in source.preferences[name] if value not in target.preferences[name]
        ]
    # The price range moves as a whole (with its currency), only into a target without one.
    has_range = any(target.preferences.get(name) is not None for name in PRICE_FIELDS)
    for name in PRICE_FIELDS:
        absorbed[name] = None if has_range else source.preferences.get(name)
    absorbed["notes"] = None if target.preferences.get("notes") else source.preferences.get("notes")
    absorbed["attributes"] = {
        key: value for key, value in source.attributes.items() if key not in target.attributes
    }
    absorbed["consents"] = {
        channel: dict(consent)
        for channel, consent in source.consents.items()
        if channel not in target.consents
    }
    for name in MERGE_SCALARS:
        absorbed[name] = getattr(source, name) if getattr(target, name) is None else None
    return absorbed


def _readable_absorbed(absorbed: Mapping[str, Any]) -> dict[str, Any]:
    """An opened ``absorbed``: values of an erased source read as nothing absorbed."""
    readable = dict(absorbed)
    for name in LIST_FIELDS:
        readable[name] = _list(readable.get(name))
    if not isinstance(readable.get("attributes"), dict):
        readable["attributes"] = {}
    return readable


def _consent(customer_id: str, consent: Mapping[str, Any], recorded_by: str | None) -> Change:
    return (
        "customer.consent_recorded",
        {
            "customer_id": customer_id,
            "channel": consent["channel"],
            "granted": bool(consent["granted"]),
            "method": consent["method"],
            "note": consent.get("note"),
            "recorded_by": recorded_by,
        },
    )


def default_region(addresses: Iterable[Mapping[str, Any]]) -> str:
    """The country of the primary address (else of the first), else China."""
    addresses = list(addresses)
    for address in addresses:
        if address.get("primary") and address.get("country"):
            return str(address["country"])
    for address in addresses:
        if address.get("country"):
            return str(address["country"])
    return "CN"


# -- attribute definitions --------------------------------------------------------------------


def attribute_stream_id(key: str) -> str:
    return f"attribute:{key}"


@dataclass
class AttributeDefinition:
    key: str
    version: int = 0
    type: str = "string"
    label: str = ""
    options: list[str] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0

    @classmethod
    def from_events(cls, key: str, events: Iterable[Any]) -> AttributeDefinition:
        definition = cls(key)
        for event in events:
            definition.apply(event.type, event.payload, event.occurred_at)
        return definition

    def apply(self, event_type: str, payload: Mapping[str, Any], occurred_at: datetime) -> None:
        self.version += 1
        self.updated_at = occurred_at
        if event_type == "attribute.defined":
            self.type = payload["type"]
            self.label = payload["label"]
            self.options = payload.get("options")
            self.created_at = occurred_at
        elif event_type == "attribute.updated":
            for name, value in payload["changes"].items():
                setattr(self, name, value)

    def define(self, type_: str, label: str, options: list[str] | None) -> list[Change]:
        """New key: ``attribute.defined``. Known key: ``attribute.updated`` with the label and
        options that change; the type of a defined attribute is fixed (values exist)."""
        if not self.exists:
            return [
                (
                    "attribute.defined",
                    {"key": self.key, "type": type_, "label": label, "options": options},
                )
            ]
        if type_ != self.type:
            raise _rule(
                f"attribute {self.key} is of type {self.type}; its type cannot change",
                "attribute_type_fixed",
            )
        changes = {
            name: value
            for name, value in (("label", label), ("options", options))
            if getattr(self, name) != value
        }
        if not changes:
            return []
        return [("attribute.updated", {"key": self.key, "changes": changes})]

    def record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "type": self.type,
            "label": self.label,
            "options": list(self.options) if self.options is not None else None,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
