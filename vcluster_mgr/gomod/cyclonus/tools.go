//go:build tools

// Package tools pins the cyclonus command in this module's requirements (go mod tidy keeps it).
package tools

import _ "github.com/mattfenwick/cyclonus/cmd/cyclonus"
