// Command pulumi-resource-kubernetes is the upstream pulumi-kubernetes provider, unchanged.
//
// Upstream's own cmd/pulumi-resource-kubernetes is this same call; it is restated here only because
// `go build` of a package inside a module with replace directives needs a main module of our own
// (see go.mod). The two embedded files are generated at build time by the toolchain from the
// provider module's schema.json (with its version set) and terraform-mapping.json, exactly as
// upstream's generate.go does; nothing generated is committed.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
