"""A TensorFlow-Serving-compatible model server, client library and deploy files.

The package speaks the TF Serving protocol (gRPC ``PredictionService`` and
``ModelService`` from ``tensorflow_serving.apis``, plus the REST API) over any
SavedModel laid out as ``<base_path>/<version>/``. Its only contract with the
rest of the project is that directory layout; it imports nothing from
``trainer``, ``components`` or ``pipeline``.

Importing ``serving`` is cheap: TensorFlow is imported only by the modules that
need it (``serving.server``, ``serving.client``...).

Example:
    >>> from serving.server import ModelServer          # doctest: +SKIP
    >>> from serving.flags import ServerOptions         # doctest: +SKIP
    >>> server = ModelServer(ServerOptions(port=0, rest_api_port=0,
    ...     model_name="taxi", model_base_path="/models/taxi"))  # doctest: +SKIP
    >>> server.start(); print(server.grpc_port)         # doctest: +SKIP
"""

__all__ = []
