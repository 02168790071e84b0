"""The raw nameko RPC baseline, run as a process of its own (``python -m bench.rpc_ping``):
``concurrency`` green threads, each with its own ``ClusterRpcProxy`` (its own AMQP connection
and reply queue), call ``<service>.ping()`` in a closed loop, as the gateway's RPC client
would, but without HTTP. Prints the phase's figures as one JSON object on stdout.

eventlet's monkey patch comes first, as in every nameko process.
"""

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from bench.load import OK, run_threads  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp-uri", required=True)
    parser.add_argument("--service", default="customers")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args(argv)
    config = {"AMQP_URI": args.amqp_uri, "serializer": "json"}

    def make_worker(number: int):
        proxy = ClusterRpcProxy(config, timeout=10)
        cluster = proxy.start()
        service = getattr(cluster, args.service)
        service.ping()  # the reply queue exists before the clock starts

        def call(iteration: int):
            service.ping()
            return OK

        return call, proxy.stop

    measurement = run_threads(make_worker, args.concurrency, args.duration, args.warmup)
    json.dump(measurement.summary(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
