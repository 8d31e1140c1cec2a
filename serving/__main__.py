"""``python -m serving``: tensorflow_model_server's command line."""

from __future__ import annotations

import logging
import signal
import sys

from serving.flags import parse_flags


def main(argv: list[str] | None = None) -> int:
    """Parses flags, starts the server and serves until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    try:
        options = parse_flags(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if options.num_server_processes > 1 and options.server_process_index is None:
        from serving.process_group import run_group  # noqa: PLC0415 - no TensorFlow in the parent.

        return run_group(options, argv)
    from serving.server import ModelServer  # Imports TensorFlow (slow): after flag checks.

    try:
        server = ModelServer(options)
        server.start()
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Running gRPC ModelServer at {options.host}:{server.grpc_port}", flush=True)
    if server.rest_port is not None:
        print(f"Exporting HTTP/REST API at {options.host}:{server.rest_port}", flush=True)

    def _stop(signum, frame):
        del signum, frame
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
