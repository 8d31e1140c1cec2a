"""The BulkInferrer component: scores Examples with a (blessed) Model in Beam, into PredictionLogs."""

from components.bulk_inferrer.component import BulkInferrer, BulkInferrerParameters

__all__ = ["BulkInferrer", "BulkInferrerParameters"]
