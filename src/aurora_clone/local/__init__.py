"""The embedded AWS world: moto over HTTPS on loopback with its gaps closed, a local Lambda runtime,
EventBridge played locally, and a local CloudFormation. Only the CLI, the demo and the tests use it; the
Lambda handler never imports it."""
