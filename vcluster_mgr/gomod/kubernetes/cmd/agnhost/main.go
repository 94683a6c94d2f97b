// Command agnhost is the Kubernetes e2e test image's multi-tool, cut down to the three subcommands the
// cyclonus conformance run uses: `serve-hostname` and `porter` serve on the probed ports, `connect` is the
// probe cyclonus execs in a pod. The subcommands are upstream's (k8s.io/kubernetes test/images/agnhost, at
// the Kubernetes version this module pins); only the list of them is ours, so the image stays small and the
// build takes seconds once the Kubernetes packages are compiled.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/test/images/agnhost/connect"
	"k8s.io/kubernetes/test/images/agnhost/porter"
	servehostname "k8s.io/kubernetes/test/images/agnhost/serve-hostname"
)

// Version is upstream's agnhost version at the pinned Kubernetes release (test/images/agnhost/VERSION),
// set at build time from vcluster_mgr/toolchain/pins.py.
var Version = "development"

func main() {
	root := &cobra.Command{Use: "agnhost", Version: Version}
	root.AddCommand(connect.CmdConnect)
	root.AddCommand(porter.CmdPorter)
	root.AddCommand(servehostname.CmdServeHostname)
	os.Exit(cli.Run(root))
}
