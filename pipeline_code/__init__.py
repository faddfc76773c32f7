"""SageMaker Pipeline builders (model build, batch scoring, drift check) and their step scripts.

Step scripts import nothing from CDK or from this package and carry their own pinned requirements.
"""

import os

# Before any builder imports the SageMaker SDK (whatever the import order of a module): 2.x otherwise
# prints a deprecation banner on every synth that no platform user can act on.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
