//go:build tools

// Package cluster holds the wrapper module that builds the local control plane (see README.md).
// The commands it builds are named in go.mod's tool block. This file only pins libraries that the
// module's own programs (the fake kubelet, cdi-check) import, so `go mod tidy` keeps them before
// those programs exist. It is never compiled.
package cluster

import (
	_ "tags.cncf.io/container-device-interface/pkg/cdi"
)
