"""Reusable L3 constructs of the SageMaker ML platform.

What belongs here: one construct per logical unit (key, bucket, network, duty role, pipeline,
endpoint, alarms, Studio domain), with keyword-only props and a documented default for each optional
one; CDK objects (``IRole``, ``IKey``, ``IBucket``, ``IVpc``, ``ISecurityGroup``) rather than ARN or id
strings; ``grant_*`` methods returning an ``iam.Grant`` and ``metric_*`` methods taking
``cloudwatch.MetricOptions`` keywords. What does not: the environment configuration (``config``), the
stacks, environment names. The stacks translate configuration into props (a test fails when a module
here imports ``config`` or ``stacks``).

Named ``ml_constructs`` so it never shadows the ``constructs`` library.
"""

from ml_constructs.buckets import SecureBucket
from ml_constructs.endpoints import EndpointModel, GuardedEndpoint, Rollout
from ml_constructs.keys import PlatformKey
from ml_constructs.mlflow_server import MlflowTrackingServer
from ml_constructs.model_registry import ModelRegistry
from ml_constructs.monitoring import AlarmRule, AlarmSet, PlatformDashboard
from ml_constructs.network import PrivateNetwork
from ml_constructs.notifications import NotificationTopic
from ml_constructs.roles import DutyRole
from ml_constructs.sagemaker_pipeline import SageMakerPipeline
from ml_constructs.step_code import StepCode
from ml_constructs.studio_domain import StudioDomain

__all__ = [
    "AlarmRule",
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
    "Rollout",
    "SageMakerPipeline",
    "SecureBucket",
    "StepCode",
    "StudioDomain",
]
