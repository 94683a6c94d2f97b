// Command coredns is CoreDNS with only the plugins a local cluster DNS needs.
//
// Upstream's main package links every plugin (cloud DNS providers, etcd, ...); importing just these
// keeps the build to a fraction of that. The Corefile of the local cluster uses exactly this list.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
