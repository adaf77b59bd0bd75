// Command kube is the local Kubernetes control plane of `systemprompt dev up`: one binary whose
// subcommands run as separate processes (etcd, kube-apiserver and kube-controller-manager share
// process-global state, so they never run in one process), plus `pki` to mint certificates and
// `kubectl` for users.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

const usage = `usage: kube <command> [flags]

commands:
  pki                 create the CA, serving/client certificates, service-account keys and kubeconfigs (idempotent)
  etcd                run an embedded etcd server
  apiserver           run kube-apiserver (flags are kube-apiserver's own)
  controller-manager  run kube-controller-manager (flags are kube-controller-manager's own)
  kubectl             run kubectl (also when this binary is invoked through a link named kubectl)
`

func main() {
	if filepath.Base(os.Args[0]) == "kubectl" {
		os.Exit(runKubectl(os.Args[1:]))
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "pki":
		os.Exit(runPKI(args))
	case "etcd":
		os.Exit(runEtcd(args))
	case "apiserver":
		os.Exit(runAPIServer(args))
	case "controller-manager":
		os.Exit(runControllerManager(args))
	case "kubectl":
		os.Exit(runKubectl(args))
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "kube: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
}
