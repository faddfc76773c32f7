"""Reusable L3 constructs of the SageMaker ML platform.

Named ``ml_constructs`` so it never shadows the ``constructs`` library.
"""

from ml_constructs.buckets import SecureBucket
from ml_constructs.endpoints import EndpointModel, GuardedEndpoint
from ml_constructs.keys import PlatformKey
from ml_constructs.mlflow_server import MlflowTrackingServer
from ml_constructs.model_registry import ModelRegistry
from ml_constructs.monitoring import AlarmSet, PlatformDashboard
from ml_constructs.network import PrivateNetwork
from ml_constructs.notifications import NotificationTopic
from ml_constructs.roles import DutyRole
from ml_constructs.sagemaker_pipeline import SageMakerPipeline
from ml_constructs.step_code import StepCode
from ml_constructs.studio_domain import StudioDomain

__all__ = [
    "AlarmSet",
    "DutyRole",
    "EndpointModel",
    "GuardedEndpoint",
    "MlflowTrackingServer",
    "ModelRegistry",
    "NotificationTopic",
    "PlatformDashboard",
    "PlatformKey",
    "PrivateNetwork",
    "SageMakerPipeline",
    "SecureBucket",
    "StepCode",
    "StudioDomain",
]
