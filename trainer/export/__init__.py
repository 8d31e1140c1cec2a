"""Exporting Estimators as SavedModels for TF Serving."""

from trainer.export.export_output import (ClassificationOutput, ExportOutput, PredictOutput,
                                          RegressionOutput)
from trainer.export.receivers import (ServingInputReceiver, TensorServingInputReceiver,
                                      build_parsing_serving_input_receiver_fn,
                                      build_raw_serving_input_receiver_fn, placeholder)
from trainer.export.sequence_receivers import (
    build_raw_sequence_serving_input_receiver_fn, build_sequence_example_serving_input_receiver_fn,
    sequence_feature_list_spec)
from trainer.export.tflite import TFLiteConversion, convert_saved_model, export_tflite

__all__ = [
    "ExportOutput", "ClassificationOutput", "RegressionOutput", "PredictOutput",
    "ServingInputReceiver", "TensorServingInputReceiver", "placeholder",
    "build_parsing_serving_input_receiver_fn", "build_raw_serving_input_receiver_fn",
    "build_sequence_example_serving_input_receiver_fn", "build_raw_sequence_serving_input_receiver_fn",
    "sequence_feature_list_spec",
    "export_tflite", "convert_saved_model", "TFLiteConversion",
]
