"""Field errors reach clients in one shape, whichever layer found them."""

from gateway.problems import flat_errors


def test_nested_and_dotted_field_errors_become_dotted_paths():
    assert flat_errors(
        {
            "lines": {"0": {"quantity": ["Must be at least 1."]}, "_schema": ["Too many."]},
            "lines.0.product_id": ["Not a known product."],  # a service's own dotted path
            "emails": {"1": {"_schema": ["Must be an object."]}},
            "_schema": ["The body as a whole."],
            "card": {"number": "Not a card number."},
        }
    ) == {
        "lines.0.quantity": ["Must be at least 1."],
        "lines": ["Too many."],
        "lines.0.product_id": ["Not a known product."],
        "emails.1": ["Must be an object."],
        "_schema": ["The body as a whole."],
        "card.number": ["Not a card number."],
    }


def test_messages_for_one_path_from_both_shapes_are_kept_together():
    assert flat_errors({"a": {"b": ["one"]}, "a.b": ["two"]}) == {"a.b": ["one", "two"]}
