"""TensorProto <-> numpy round trips of serving.tensor_codec, checked with TF's own decoder."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from serving import tensor_codec


@pytest.mark.parametrize("array", [
    np.arange(6, dtype=np.float32).reshape(2, 3).T,  # Not C-contiguous.
    np.array([[1, -2]], dtype=np.int64),
    np.array(True),
    np.array([b"a", b"bc"], dtype=object),  # Through tf.make_tensor_proto.
])
def test_write_ndarray_round_trips(array):
    proto = tensor_pb2.TensorProto()
    tensor_codec.write_ndarray(proto, array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    np.testing.assert_array_equal(tensor_codec.to_ndarray(proto), array)
    assert tensor_codec.from_ndarray(array) == proto
