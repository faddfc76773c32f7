"""Reusable L3 constructs of the SageMaker ML platform.

Named ``ml_constructs`` so it never shadows the ``constructs`` library.
"""

from ml_constructs.buckets import SecureBucket
from ml_constructs.keys import PlatformKey
from ml_constructs.network import PrivateNetwork
from ml_constructs.roles import DutyRole

__all__ = ["DutyRole", "PlatformKey", "PrivateNetwork", "SecureBucket"]
