"""Generated gRPC code (hack/protos.sh) from the .proto files beside it."""
