"""The floor for synth time: an empty one-stack CDK app (Python start-up, jsii, Node)."""

import os

import aws_cdk as cdk

app = cdk.App(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
cdk.Stack(app, "Empty")
app.synth()
