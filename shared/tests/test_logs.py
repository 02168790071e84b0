"""JSON log lines carry the service name and the request id of the work in progress."""

import io
import json
import logging

import pytest
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_hook

from shared.context import RequestContext
from shared.errors import NotFound
from shared.logs import ExpectedErrorsAsInfo, JsonFormatter, logging_config, request_id_var


def _capture(service="orders"):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(service))
    logger = logging.getLogger("test.cms.logs")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, stream


def test_each_line_is_json_with_service_and_request_id():
    logger, stream = _capture()
    token = request_id_var.set("req-42")
    try:
        logger.info("placed %s", "o-1")
    finally:
        request_id_var.reset(token)
    logger.warning("no request")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["service"] == "orders" and first["message"] == "placed o-1"
    assert first["request_id"] == "req-42" and first["ts"].endswith("Z")
    assert "request_id" not in second and second["level"] == "warning"


class Echo:
    name = "echo"
    context = RequestContext()

    @rpc
    def work(self):
        logging.getLogger("test.cms.logs").info("working")
        return self.context.event_metadata({"id": "u1", "kind": "user"})


def test_a_workers_logs_and_event_metadata_carry_the_callers_request_id(
    container_factory, nameko_config
):
    _, stream = _capture("echo")
    container = container_factory(Echo, nameko_config)
    container.start()
    with entrypoint_hook(container, "work", context_data={"request_id": "req-7"}) as work:
        metadata = work()
    assert metadata == {
        "request_id": "req-7",
        "correlation_id": "req-7",
        "actor_id": "u1",
        "actor_kind": "user",
    }
    assert json.loads(stream.getvalue().splitlines()[-1])["request_id"] == "req-7"


class Failing:
    name = "failing"

    @rpc(expected_exceptions=(NotFound,))
    def missing(self):
        raise NotFound("no such customer")

    @rpc(expected_exceptions=(NotFound,))
    def broken(self):
        raise ValueError("a bug")


def test_expected_errors_are_one_info_line_and_unexpected_ones_keep_their_traceback(
    container_factory, nameko_config, caplog
):
    assert logging_config("x")["loggers"]["nameko.containers"]["filters"] == ["expected_errors"]
    containers = logging.getLogger("nameko.containers")
    quiet = ExpectedErrorsAsInfo()
    containers.addFilter(quiet)
    caplog.set_level(logging.INFO)
    try:
        container = container_factory(Failing, nameko_config)
        container.start()
        for method, error in (("missing", NotFound), ("broken", ValueError)):
            with entrypoint_hook(container, method) as call, pytest.raises(error):
                call()
    finally:
        containers.removeFilter(quiet)
    [expected] = [r for r in caplog.records if "(expected)" in r.msg]
    assert expected.levelno == logging.INFO and expected.exc_info is None
    assert expected.getMessage().endswith("NotFound: no such customer")
    [unexpected] = [r for r in caplog.records if r.msg.startswith("error handling worker")]
    assert unexpected.levelno == logging.ERROR and unexpected.exc_info
