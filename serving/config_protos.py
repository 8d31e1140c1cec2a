"""TF Serving config messages that the tensorflow-serving-api wheel omits.

``tensorflow_serving.config`` in the pip wheel ships ``ModelServerConfig`` but
not ``MonitoringConfig``, ``SSLConfig`` or ``BatchingParameters``. This module
declares those three messages (plus ``PrometheusConfig``) with the same full
names, field names and field numbers as TF Serving's ``monitoring_config.proto``,
``ssl_config.proto`` and ``session_bundle_config.proto``, so the text-format
files written for the real ``tensorflow_model_server`` parse here unchanged.

Example:
    >>> from google.protobuf import text_format
    >>> cfg = text_format.Parse('prometheus_config { enable: true }',
    ...                         MonitoringConfig())
    >>> cfg.prometheus_config.enable
    True
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import wrappers_pb2

_PACKAGE = "tensorflow.serving"
_FILE_NAME = "serving/config_protos_tf_serving.proto"

_F = descriptor_pb2.FieldDescriptorProto


def _add_field(message, name, number, field_type, *, type_name="", repeated=False):
    field = message.field.add()
    field.name = name
    field.number = number
    field.type = field_type
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = type_name


def _file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name=_FILE_NAME, package=_PACKAGE, syntax="proto3"
    )
    fdp.dependency.append(wrappers_pb2.DESCRIPTOR.name)

    prometheus = fdp.message_type.add(name="PrometheusConfig")
    _add_field(prometheus, "enable", 1, _F.TYPE_BOOL)
    _add_field(prometheus, "path", 2, _F.TYPE_STRING)

    monitoring = fdp.message_type.add(name="MonitoringConfig")
    _add_field(
        monitoring, "prometheus_config", 1, _F.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.PrometheusConfig",
    )

    ssl = fdp.message_type.add(name="SSLConfig")
    _add_field(ssl, "server_key", 1, _F.TYPE_STRING)
    _add_field(ssl, "server_cert", 2, _F.TYPE_STRING)
    _add_field(ssl, "custom_ca", 3, _F.TYPE_STRING)
    _add_field(ssl, "client_verify", 4, _F.TYPE_BOOL)

    batching = fdp.message_type.add(name="BatchingParameters")
    int64_value = ".google.protobuf.Int64Value"
    _add_field(batching, "max_batch_size", 1, _F.TYPE_MESSAGE, type_name=int64_value)
    _add_field(batching, "batch_timeout_micros", 2, _F.TYPE_MESSAGE, type_name=int64_value)
    _add_field(batching, "max_enqueued_batches", 3, _F.TYPE_MESSAGE, type_name=int64_value)
    _add_field(batching, "num_batch_threads", 4, _F.TYPE_MESSAGE, type_name=int64_value)
    _add_field(
        batching, "thread_pool_name", 5, _F.TYPE_MESSAGE,
        type_name=".google.protobuf.StringValue",
    )
    _add_field(batching, "allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True)
    _add_field(batching, "pad_variable_length_inputs", 7, _F.TYPE_BOOL)
    return fdp


def _build():
    pool = descriptor_pool.Default()
    try:
        file_descriptor = pool.FindFileByName(_FILE_NAME)
    except KeyError:
        file_descriptor = pool.Add(_file_descriptor_proto())
        if not hasattr(file_descriptor, "message_types_by_name"):
            file_descriptor = pool.FindFileByName(_FILE_NAME)
    by_name = file_descriptor.message_types_by_name
    return {
        name: message_factory.GetMessageClass(by_name[name])
        for name in ("PrometheusConfig", "MonitoringConfig", "SSLConfig", "BatchingParameters")
    }


_CLASSES = _build()
PrometheusConfig = _CLASSES["PrometheusConfig"]
MonitoringConfig = _CLASSES["MonitoringConfig"]
SSLConfig = _CLASSES["SSLConfig"]
BatchingParameters = _CLASSES["BatchingParameters"]

__all__ = ["BatchingParameters", "MonitoringConfig", "PrometheusConfig", "SSLConfig"]
