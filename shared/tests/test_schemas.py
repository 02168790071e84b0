"""``shared.schemas``: one schema instance per class, shared by every call."""

import pytest
from marshmallow import Schema, ValidationError, fields

from shared.schemas import as_instance, schema_instance


class Item(Schema):
    name = fields.String(required=True)
    tags = fields.List(fields.Nested(lambda: Tag()))


class Tag(Schema):
    label = fields.String(required=True)


def test_one_instance_per_class_and_many():
    assert schema_instance(Item) is schema_instance(Item)
    assert schema_instance(Item, True) is not schema_instance(Item)
    assert schema_instance(Item, True).many and not schema_instance(Item).many
    own = Item(partial=True)
    assert as_instance(own) is own and as_instance(Item) is schema_instance(Item)


def test_a_shared_instance_keeps_nothing_from_one_call_to_the_next():
    shared = schema_instance(Item)
    with pytest.raises(ValidationError) as caught:
        shared.load({"tags": [{"label": 1}]})
    assert set(caught.value.messages) == {"name", "tags"}
    assert shared.load({"name": "a", "tags": [{"label": "x"}]}) == {
        "name": "a",
        "tags": [{"label": "x"}],
    }
    assert shared.dump({"name": "b", "tags": []}) == {"name": "b", "tags": []}
