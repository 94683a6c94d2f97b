package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func TestParseID(t *testing.T) {
	cases := []struct {
		id, ns, name string
		ok           bool
	}{
		{"web", "", "web", true},
		{"team-a/web", "team-a", "web", true},
		{"", "", "", false},
		{"a/b/c", "", "", false},
		{"/web", "", "", false},
		{"team-a/", "", "", false},
	}
	for _, c := range cases {
		ns, name, err := parseID(c.id)
		if (err == nil) != c.ok || ns != c.ns || name != c.name {
			t.Errorf("parseID(%q) = %q, %q, %v", c.id, ns, name, err)
		}
		if c.ok && formatID(ns, name) != c.id {
			t.Errorf("formatID does not round-trip %q", c.id)
		}
	}
}

func TestParseConfig(t *testing.T) {
	inline := "apiVersion: v1\nkind: Config\nclusters: []\n"
	cfg, err := parseConfig(
		map[string]string{
			"kubernetes:config:namespace":             "from-vars",
			"kubernetes:config:deleteTimeoutSeconds":  "42",
			"kubernetes:config:enableServerSideApply": "true",
		},
		resource.PropertyMap{
			"kubeconfig": resource.MakeSecret(resource.NewProperty(inline)),
			"context":    resource.NewProperty(`"ctx-a"`), // JSON-encoded string
			"namespace":  resource.NewProperty("from-args"),
			"version":    resource.NewProperty("4.34.2"),
		})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.kubeconfig != inline || !cfg.kubeconfigIsContent {
		t.Errorf("kubeconfig = %q (content=%v)", cfg.kubeconfig, cfg.kubeconfigIsContent)
	}
	if cfg.context != "ctx-a" || cfg.namespace != "from-args" || cfg.deleteTimeout != 42*time.Second {
		t.Errorf("unexpected config %+v", cfg)
	}

	cfg, err = parseConfig(nil, resource.PropertyMap{
		"kubeconfig":           resource.NewProperty("/tmp/kc.yaml"),
		"deleteTimeoutSeconds": resource.NewProperty(7.0),
	})
	if err != nil || cfg.kubeconfigIsContent || cfg.kubeconfig != "/tmp/kc.yaml" || cfg.deleteTimeout != 7*time.Second {
		t.Errorf("path config: %+v, %v", cfg, err)
	}

	cfg, err = parseConfig(nil, nil)
	if err != nil || cfg.deleteTimeout != defaultDeleteTimeout || cfg.kubeconfig != "" {
		t.Errorf("empty config: %+v, %v", cfg, err)
	}

	cfg, _ = parseConfig(nil, resource.PropertyMap{"kubeconfig": resource.MakeComputed(resource.NewProperty(""))})
	if !cfg.unknown {
		t.Errorf("an unknown kubeconfig must be reported")
	}

	if _, err := parseConfig(map[string]string{"kubernetes:config:deleteTimeoutSeconds": "soon"}, nil); err == nil {
		t.Errorf("a non-numeric timeout must be rejected")
	}
}

func obj(apiVersion, kind, ns, name string, extra resource.PropertyMap) resource.PropertyMap {
	meta := resource.PropertyMap{}
	if name != "" {
		meta["name"] = resource.NewProperty(name)
	}
	if ns != "" {
		meta["namespace"] = resource.NewProperty(ns)
	}
	m := resource.PropertyMap{
		"apiVersion": resource.NewProperty(apiVersion),
		"kind":       resource.NewProperty(kind),
		"metadata":   resource.NewProperty(meta),
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestCheckObject(t *testing.T) {
	// Missing kind: a failure, not an error.
	_, failures := checkObject("x", nil, resource.PropertyMap{"apiVersion": resource.NewProperty("v1")}, nil)
	if len(failures) != 1 || failures[0].Property != "kind" {
		t.Fatalf("failures = %v", failures)
	}

	// Autonaming is stable for a seed and sanitised.
	news := obj("v1", "ConfigMap", "", "", nil)
	a, _ := checkObject("My_App", nil, news, []byte("seed"))
	b, _ := checkObject("My_App", nil, news, []byte("seed"))
	na, _ := getString(a, "metadata", "name")
	nb, _ := getString(b, "metadata", "name")
	if na != nb || !strings.HasPrefix(na, "my-app-") || len(na) != len("my-app-")+8 {
		t.Errorf("autonames %q %q", na, nb)
	}
	if _, ok := getString(news, "metadata", "name"); ok {
		t.Errorf("checkObject must not modify its input")
	}

	// An existing object keeps its name.
	olds := obj("v1", "ConfigMap", "", "my-app-1234abcd", nil)
	c, _ := checkObject("My_App", olds, news, []byte("other"))
	if n, _ := getString(c, "metadata", "name"); n != "my-app-1234abcd" {
		t.Errorf("name not reused: %q", n)
	}

	// An explicit name is left alone.
	d, _ := checkObject("x", olds, obj("v1", "ConfigMap", "", "explicit", nil), nil)
	if n, _ := getString(d, "metadata", "name"); n != "explicit" {
		t.Errorf("explicit name changed: %q", n)
	}
}

func TestDiffObject(t *testing.T) {
	data := func(v string) resource.PropertyMap {
		return resource.PropertyMap{"data": resource.NewProperty(resource.PropertyMap{
			"config.yaml": resource.NewProperty(v),
		})}
	}
	oldIn := obj("v1", "ConfigMap", "", "cm", data("a"))
	oldLive := obj("v1", "ConfigMap", "default", "cm", data("a"))
	oldLive["__internal"] = resource.NewProperty("x")

	// Same inputs, implicit default namespace: no change at all.
	d := diffObject(oldIn, oldLive, obj("v1", "ConfigMap", "", "cm", data("a")), "default")
	if d.changed || len(d.replaces) != 0 {
		t.Errorf("unexpected diff %+v", d)
	}

	// Making the default namespace explicit is not a move.
	d = diffObject(oldIn, oldLive, obj("v1", "ConfigMap", "default", "cm", data("a")), "default")
	if len(d.replaces) != 0 {
		t.Errorf("explicit default namespace replaced: %+v", d)
	}

	// A changed default namespace moves an object that relies on it, unless
	// the default is not known yet.
	if d := diffObject(oldIn, oldLive, obj("v1", "ConfigMap", "", "cm", data("a")), "team"); !reflect.DeepEqual(d.replaces, []string{"metadata"}) {
		t.Errorf("changed default namespace: %+v", d)
	}
	if d := diffObject(oldIn, oldLive, obj("v1", "ConfigMap", "", "cm", data("a")), ""); d.changed {
		t.Errorf("unknown default namespace: %+v", d)
	}

	// Data change: an in-place update with a quoted path.
	d = diffObject(oldIn, oldLive, obj("v1", "ConfigMap", "", "cm", data("b")), "default")
	if !d.changed || len(d.replaces) != 0 || !reflect.DeepEqual(d.keys, []string{"data"}) {
		t.Errorf("data diff %+v", d)
	}
	if pd := d.detailed[`data["config.yaml"]`]; pd == nil || pd.Kind != pulumirpc.PropertyDiff_UPDATE {
		t.Errorf("detailed diff %v", d.detailed)
	}

	// Rename and move: replacements.
	d = diffObject(oldIn, oldLive, obj("v1", "ConfigMap", "other", "cm2", data("a")), "default")
	if !reflect.DeepEqual(d.replaces, []string{"metadata"}) {
		t.Errorf("replaces %v", d.replaces)
	}
	if pd := d.detailed["metadata.name"]; pd == nil || pd.Kind != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Errorf("metadata.name diff %v", d.detailed)
	}
	if pd := d.detailed["metadata.namespace"]; pd == nil || pd.Kind != pulumirpc.PropertyDiff_ADD_REPLACE {
		t.Errorf("metadata.namespace diff %v", d.detailed)
	}

	// A version bump inside the same group updates; a group change replaces.
	dep := func(apiVersion string) resource.PropertyMap { return obj(apiVersion, "Deployment", "ns", "web", nil) }
	if d := diffObject(dep("apps/v1beta2"), dep("apps/v1beta2"), dep("apps/v1"), "default"); len(d.replaces) != 0 || !d.changed {
		t.Errorf("version bump %+v", d)
	}
	if d := diffObject(dep("extensions/v1beta1"), dep("extensions/v1beta1"), dep("apps/v1"), "default"); !reflect.DeepEqual(d.replaces, []string{"apiVersion"}) {
		t.Errorf("group change %+v", d)
	}

	// Secrets compare by value; unknowns are changes.
	secret := obj("v1", "ConfigMap", "", "cm", resource.PropertyMap{"data": resource.MakeSecret(resource.NewProperty(
		resource.PropertyMap{"config.yaml": resource.NewProperty("a")}))})
	if d := diffObject(oldIn, oldLive, secret, "default"); d.changed {
		t.Errorf("secret wrapping alone is not a change: %+v", d)
	}
	unknown := obj("v1", "ConfigMap", "", "cm", resource.PropertyMap{"data": resource.MakeComputed(resource.NewProperty(""))})
	if d := diffObject(oldIn, oldLive, unknown, "default"); !d.changed || len(d.replaces) != 0 {
		t.Errorf("unknown data %+v", d)
	}

	// Removed key and added array element.
	withList := func(items ...string) resource.PropertyMap {
		var arr []resource.PropertyValue
		for _, i := range items {
			arr = append(arr, resource.NewProperty(i))
		}
		return obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "r", resource.PropertyMap{
			"rules": resource.NewProperty([]resource.PropertyValue{resource.NewProperty(resource.PropertyMap{
				"verbs": resource.NewProperty(arr),
			})}),
		})
	}
	d = diffObject(withList("get"), withList("get"), withList("get", "list"), "default")
	if pd := d.detailed["rules[0].verbs[1]"]; pd == nil || pd.Kind != pulumirpc.PropertyDiff_ADD || len(d.replaces) != 0 {
		t.Errorf("array diff %v", d.detailed)
	}
	d = diffObject(oldIn, oldLive, obj("v1", "ConfigMap", "", "cm", nil), "default")
	if pd := d.detailed["data"]; pd == nil || pd.Kind != pulumirpc.PropertyDiff_DELETE {
		t.Errorf("removed key %v", d.detailed)
	}
}

func TestObjectConversionKeepsSecrets(t *testing.T) {
	in := obj("v1", "ConfigMap", "", "cm", resource.PropertyMap{
		"data": resource.NewProperty(resource.PropertyMap{
			"password": resource.MakeSecret(resource.NewProperty("hunter2")),
			"port":     resource.NewProperty(8080.0),
		}),
		"__defaults": resource.NewProperty([]resource.PropertyValue{}),
	})
	o, secrets, unknowns := toObject(in)
	if unknowns {
		t.Fatal("no unknowns expected")
	}
	if _, ok := o["__defaults"]; ok {
		t.Errorf("internal key kept")
	}
	if o["data"].(map[string]any)["port"] != int64(8080) {
		t.Errorf("whole numbers must become integers: %#v", o["data"])
	}
	outs := toOutputs(o, secrets)
	passwordPath := resource.PropertyPath{"data", "password"}
	if v, _ := passwordPath.Get(resource.NewProperty(outs)); !v.IsSecret() {
		t.Errorf("secret lost: %v", v)
	}

	s := toOutputs(map[string]any{"apiVersion": "v1", "kind": "Secret", "data": map[string]any{"k": "dg=="}}, nil)
	if !s["data"].IsSecret() {
		t.Errorf("Secret data must be secret")
	}
}

func TestConfigDiff(t *testing.T) {
	olds := resource.PropertyMap{"kubeconfig": resource.NewProperty("a"), "namespace": resource.NewProperty("x")}
	news := resource.PropertyMap{"kubeconfig": resource.MakeSecret(resource.NewProperty("a")), "context": resource.NewProperty("c")}
	if got := configDiff(olds, news); !reflect.DeepEqual(got, []string{"context", "namespace"}) {
		t.Errorf("configDiff = %v", got)
	}
}
