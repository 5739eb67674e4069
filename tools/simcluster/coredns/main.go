// Command coredns is the simulated cluster's DNS server: CoreDNS with only the
// plugins a small cluster's Corefile uses, so that it builds in a fraction of
// the time of the full distribution (whose cloud-provider plugins pull in large
// SDKs) while serving *.svc.cluster.local from the API exactly as upstream does.
package main

import (
	"github.com/coredns/coredns/coremain"

	// The plugins of the Corefile written by tools/simcluster/realnode.sh.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() {
	coremain.Run()
}
