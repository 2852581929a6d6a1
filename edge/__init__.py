"""The live runtime: ZeroMQ-connected stages from camera to published micro-expression events."""
