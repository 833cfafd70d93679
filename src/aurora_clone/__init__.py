"""Custom::AuroraClone: Aurora copy-on-write clones as a CloudFormation custom resource."""
