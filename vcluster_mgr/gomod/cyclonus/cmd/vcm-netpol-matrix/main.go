// Command vcm-netpol-matrix computes, with cyclonus's policy engine (github.com/mattfenwick/cyclonus
// pkg/matcher), which pods may connect to which under a set of NetworkPolicies, without a cluster.
//
// vcluster-mgr judges its blueprint with it: the expected connectivity comes from an engine we did not
// write, and the probes on a real node must match it cell for cell. It reads one JSON document on stdin
//
//	{"policies":   [NetworkPolicy, ...],
//	 "namespaces": {"name": {"label": "value"}, ...},
//	 "pods":       [{"namespace": "ns", "name": "pod", "labels": {...}, "ip": "10.0.0.1"}, ...],
//	 "ports":      [{"port": 8080, "protocol": "TCP"}, ...]}
//
// and writes {"cells": [{"from": "ns/pod", "to": "ns/pod", "port": 8080, "protocol": "TCP",
// "allowed": bool, "ingress": bool, "egress": bool}, ...]} for every ordered pair of distinct pods and
// every port. Malformed input exits 2 with the reason on stderr.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

type pod struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
	IP        string            `json:"ip"`
}

type port struct {
	Port     int         `json:"port"`
	Protocol v1.Protocol `json:"protocol"`
}

type input struct {
	Policies   []*networkingv1.NetworkPolicy `json:"policies"`
	Namespaces map[string]map[string]string  `json:"namespaces"`
	Pods       []pod                         `json:"pods"`
	Ports      []port                        `json:"ports"`
}

type cell struct {
	From     string      `json:"from"`
	To       string      `json:"to"`
	Port     int         `json:"port"`
	Protocol v1.Protocol `json:"protocol"`
	Allowed  bool        `json:"allowed"`
	Ingress  bool        `json:"ingress"`
	Egress   bool        `json:"egress"`
}

func peer(p pod, namespaces map[string]map[string]string) *matcher.TrafficPeer {
	return &matcher.TrafficPeer{
		IP: p.IP,
		Internal: &matcher.InternalPeer{
			PodLabels: p.Labels, NamespaceLabels: namespaces[p.Namespace], Namespace: p.Namespace,
		},
	}
}

func run(in io.Reader, out io.Writer) error {
	var doc input
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("reading the input document: %w", err)
	}
	for i, p := range doc.Pods {
		if _, ok := doc.Namespaces[p.Namespace]; !ok {
			return fmt.Errorf("pods[%d] (%s/%s): namespace %q has no entry in namespaces", i, p.Namespace, p.Name, p.Namespace)
		}
	}
	policies := matcher.BuildNetworkPolicies(true, doc.Policies)
	cells := []cell{}
	for _, src := range doc.Pods {
		for _, dst := range doc.Pods {
			if src.Namespace == dst.Namespace && src.Name == dst.Name {
				continue
			}
			for _, pp := range doc.Ports {
				result := policies.IsTrafficAllowed(&matcher.Traffic{
					Source: peer(src, doc.Namespaces), Destination: peer(dst, doc.Namespaces),
					ResolvedPort: pp.Port, Protocol: pp.Protocol,
				})
				cells = append(cells, cell{
					From: src.Namespace + "/" + src.Name, To: dst.Namespace + "/" + dst.Name,
					Port: pp.Port, Protocol: pp.Protocol, Allowed: result.IsAllowed(),
					Ingress: result.Ingress.IsAllowed(), Egress: result.Egress.IsAllowed(),
				})
			}
		}
	}
	return json.NewEncoder(out).Encode(map[string][]cell{"cells": cells})
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Printf("vcm-netpol-matrix (cyclonus %s policy engine)\n", cyclonusVersion)
		return
	}
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vcm-netpol-matrix:", err)
		os.Exit(2)
	}
}

// cyclonusVersion is the cyclonus module this engine is built from, set at build time from pins.py.
var cyclonusVersion = "development"
