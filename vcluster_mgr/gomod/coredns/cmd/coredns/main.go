// Command coredns is CoreDNS with only the plugins a local cluster DNS needs.
//
// Upstream's main package links every plugin (cloud DNS providers, etcd, ...); importing just these
// keeps the build to a fraction of that. The Corefiles of the local cluster (its DNS and the node's resolver) and of the test charts use
// exactly this list: bind, forward and hosts are for the node's resolver and for the DNS forwarders in tests;
// loop and loadbalance are in the Corefile of every virtual cluster's CoreDNS (the image is the same binary).
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
