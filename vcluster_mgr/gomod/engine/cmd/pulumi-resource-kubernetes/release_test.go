package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// writeChart makes a minimal chart directory and returns its path.
func writeChart(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"Chart.yaml":               "apiVersion: v2\nname: demo\nversion: " + version + "\nappVersion: \"1.2\"\n",
		"values.yaml":              "replicas: 1\n",
		"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  replicas: \"{{ .Values.replicas }}\"\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func failureOn(failures []*pulumirpc.CheckFailure, prop string) string {
	for _, f := range failures {
		if f.Property == prop {
			return f.Reason
		}
	}
	return ""
}

func TestParseReleaseDefaultsAndTypes(t *testing.T) {
	s, r := parseRelease(resource.NewPropertyMapFromMap(map[string]any{
		"chart": "/charts/vcluster", "namespace": "team-a", "compat": "true",
	}))
	if len(r.failures) > 0 || r.unknown {
		t.Fatalf("unexpected failures %v", r.failures)
	}
	if !s.skipAwait || s.timeout != defaultReleaseTimeout || s.maxHistory != defaultMaxHistory || s.atomic {
		t.Errorf("defaults: %+v", s)
	}

	s, r = parseRelease(resource.PropertyMap{
		"chart":      resource.NewProperty("vcluster"),
		"version":    resource.NewProperty(" 0.35.3 "),
		"skipAwait":  resource.NewProperty(false),
		"timeout":    resource.NewProperty(42.0),
		"maxHistory": resource.NewProperty(0.0),
		"atomic":     resource.NewProperty(true),
		"skipCrds":   resource.NewProperty(true),
		"repositoryOpts": resource.NewProperty(resource.PropertyMap{
			"repo":     resource.NewProperty("https://charts.loft.sh"),
			"username": resource.NewProperty("u"),
			"password": resource.MakeSecret(resource.NewProperty("p")),
			"caFile":   resource.NewProperty("/ca.pem"),
		}),
	})
	if len(r.failures) > 0 {
		t.Fatalf("unexpected failures %v", r.failures)
	}
	want := repositoryOpts{repo: "https://charts.loft.sh", username: "u", password: "p", caFile: "/ca.pem"}
	if s.version != "0.35.3" || s.skipAwait || !s.wait() || s.timeout != 42*time.Second || s.maxHistory != 0 ||
		!s.atomic || !s.skipCrds || s.repo != want {
		t.Errorf("parsed %+v", s)
	}

	_, r = parseRelease(resource.NewPropertyMapFromMap(map[string]any{
		"chart": 3.0, "timeout": -1.0, "maxHistory": 2.5, "atomic": "yes",
		"repositoryOpts": map[string]any{"repo": true},
	}))
	for _, prop := range []string{"chart", "timeout", "maxHistory", "atomic", "repositoryOpts.repo"} {
		if failureOn(r.failures, prop) == "" {
			t.Errorf("expected a failure on %s, got %v", prop, r.failures)
		}
	}

	_, r = parseRelease(resource.PropertyMap{"chart": resource.MakeComputed(resource.NewProperty(""))})
	if !r.unknown || len(r.failures) > 0 {
		t.Errorf("an unknown chart is no failure: %v %v", r.unknown, r.failures)
	}
}

func TestReleaseValuesMergeFilesNullsAndSecrets(t *testing.T) {
	file, err := asset.FromText("controlPlane:\n  statefulSet:\n    replicas: 1\n    image: a\nsync:\n  enabled: true\n")
	if err != nil {
		t.Fatal(err)
	}
	m := resource.PropertyMap{
		"valueYamlFiles": resource.NewProperty([]resource.PropertyValue{resource.NewProperty(file)}),
		"values": resource.NewProperty(resource.PropertyMap{
			"controlPlane": resource.NewProperty(resource.PropertyMap{
				"statefulSet": resource.NewProperty(resource.PropertyMap{
					"replicas": resource.NewProperty(3.0),
					"image":    resource.NewNullProperty(),
				}),
			}),
			"token": resource.MakeSecret(resource.NewProperty("s3cr3t")),
		}),
	}
	vals, whole, unknown, err := releaseValues(m, false)
	if err != nil || whole || unknown {
		t.Fatalf("releaseValues: %v %v %v", err, whole, unknown)
	}
	want := map[string]any{
		"controlPlane": map[string]any{"statefulSet": map[string]any{"replicas": int64(3), "image": "a"}},
		"sync":         map[string]any{"enabled": true},
		"token":        "s3cr3t",
	}
	// A null without allowNullValues leaves the file's (or chart's) value.
	if !reflect.DeepEqual(plainValues(vals), plainValues(want)) {
		t.Errorf("merged values = %#v", vals)
	}
	vals, _, _, _ = releaseValues(m, true)
	sts := vals["controlPlane"].(map[string]any)["statefulSet"].(map[string]any)
	if v, ok := sts["image"]; !ok || v != nil {
		t.Errorf("allowNullValues keeps the null (Helm then drops the default): %#v", sts)
	}

	secretValues := resource.PropertyMap{"values": resource.MakeSecret(resource.NewProperty(resource.PropertyMap{
		"a": resource.NewProperty("b"),
	}))}
	if _, whole, _, _ := releaseValues(secretValues, false); !whole {
		t.Errorf("values secret as a whole must be reported")
	}
	if _, _, unknown, _ := releaseValues(resource.PropertyMap{"values": resource.NewProperty(resource.PropertyMap{
		"a": resource.MakeComputed(resource.NewProperty("")),
	})}, false); !unknown {
		t.Errorf("unknown values must be reported")
	}
	if _, _, _, err := releaseValues(resource.PropertyMap{"values": resource.NewProperty("x")}, false); err == nil {
		t.Errorf("values that are not a map must be rejected")
	}
	bad, _ := asset.FromText("- a list\n")
	if _, _, _, err := releaseValues(resource.PropertyMap{"valueYamlFiles": resource.NewProperty(
		[]resource.PropertyValue{resource.NewProperty(bad)})}, false); err == nil {
		t.Errorf("a values file that is not a map must be rejected")
	}
}

func TestClassifyChart(t *testing.T) {
	local := writeChart(t, "0.1.0")
	cases := []struct {
		chart string
		repo  string
		src   chartSource
		ref   string
	}{
		{local, "", chartLocal, local},
		{"oci://ghcr.io/loft-sh/charts/vcluster", "", chartOCI, "oci://ghcr.io/loft-sh/charts/vcluster"},
		{"vcluster", "oci://ghcr.io/loft-sh/charts/", chartOCI, "oci://ghcr.io/loft-sh/charts/vcluster"},
		{"vcluster", "https://charts.loft.sh", chartRepository, "vcluster"},
		{"vcluster", "loft", chartRepoName, "loft/vcluster"},
		{"loft/vcluster", "", chartRepoName, "loft/vcluster"},
		{"https://example.invalid/vcluster-0.35.3.tgz", "", chartURL, "https://example.invalid/vcluster-0.35.3.tgz"},
		{"/nowhere/vcluster", "", chartMissing, "/nowhere/vcluster"},
		{"./charts/vcluster", "", chartMissing, "./charts/vcluster"},
		{"vcluster-0.35.3.tgz", "", chartMissing, "vcluster-0.35.3.tgz"},
		{"vcluster", "", chartMissing, "vcluster"},
	}
	for _, c := range cases {
		src, ref := classifyChart(c.chart, repositoryOpts{repo: c.repo})
		if src != c.src || ref != c.ref {
			t.Errorf("classifyChart(%q, %q) = %v, %q; want %v, %q", c.chart, c.repo, src, ref, c.src, c.ref)
		}
	}
}

func TestCheckReleaseNamesAndLocalChartVersion(t *testing.T) {
	chart := writeChart(t, "0.2.0")
	seed := []byte("seed")
	news := resource.NewPropertyMapFromMap(map[string]any{"chart": chart, "values": map[string]any{"replicas": 2.0}})
	out, failures := checkRelease("my-vcluster", nil, news, seed)
	if len(failures) > 0 {
		t.Fatalf("failures: %v", failures)
	}
	name, _ := getString(out, "name")
	if !strings.HasPrefix(name, "my-vcluster-") || len(name) != len("my-vcluster-")+8 {
		t.Errorf("autonamed %q", name)
	}
	if v, _ := getString(out, "version"); v != "0.2.0" {
		t.Errorf("the local chart's version must become an input: %q", v)
	}
	again, _ := checkRelease("my-vcluster", nil, news, seed)
	if n, _ := getString(again, "name"); n != name {
		t.Errorf("the same seed must give the same name: %q, %q", n, name)
	}
	kept, _ := checkRelease("my-vcluster", out, news, []byte("other"))
	if n, _ := getString(kept, "name"); n != name {
		t.Errorf("an existing release keeps its name: %q, %q", n, name)
	}

	long := strings.Repeat("x", 80)
	out, failures = checkRelease(long, nil, news, seed)
	if n, _ := getString(out, "name"); len(n) > maxReleaseNameLen || len(failures) > 0 {
		t.Errorf("autonames fit Helm's limit: %q %v", n, failures)
	}

	cases := []struct {
		inputs map[string]any
		prop   string
	}{
		{map[string]any{}, "chart"},
		{map[string]any{"chart": "/nowhere/chart"}, "chart"},
		{map[string]any{"chart": chart, "version": "9.9.9"}, "version"},
		{map[string]any{"chart": chart, "name": "Not_Valid"}, "name"},
		{map[string]any{"chart": chart, "namespace": "Team A"}, "namespace"},
		{map[string]any{"chart": chart, "values": "replicas=2"}, "values"},
	}
	for _, c := range cases {
		_, failures := checkRelease("r", nil, resource.NewPropertyMapFromMap(c.inputs), seed)
		if failureOn(failures, c.prop) == "" {
			t.Errorf("inputs %v: expected a failure on %s, got %v", c.inputs, c.prop, failures)
		}
	}

	// A chart of a repository is not looked at (no network in Check).
	_, failures = checkRelease("r", nil, resource.NewPropertyMapFromMap(map[string]any{
		"chart": "vcluster", "version": "0.35.3", "repositoryOpts": map[string]any{"repo": "https://charts.loft.sh"},
	}), seed)
	if len(failures) > 0 {
		t.Errorf("repository chart: %v", failures)
	}
	// Unknown inputs in a preview are no failures.
	_, failures = checkRelease("r", nil, resource.PropertyMap{
		"chart": resource.MakeComputed(resource.NewProperty("")),
		"name":  resource.MakeComputed(resource.NewProperty("")),
	}, seed)
	if len(failures) > 0 {
		t.Errorf("unknowns: %v", failures)
	}
}

// liveRelease is what the outputs of a release look like after a refresh.
func liveRelease(inputs resource.PropertyMap, status string, vals map[string]any) resource.PropertyMap {
	name, _ := getString(inputs, "name")
	ns, _ := getString(inputs, "namespace")
	if ns == "" {
		ns = "default"
	}
	version, _ := getString(inputs, "version")
	return releaseOutputs(inputs, releaseInfo{
		name: name, namespace: ns, chart: "vcluster", version: version, status: status, revision: 1, values: vals,
		manifest: "---\n# Source: vcluster/templates/sa.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: vc-" + name + "\n",
	})
}

func TestDiffRelease(t *testing.T) {
	base := map[string]any{
		"chart": "/charts/vcluster", "version": "0.35.3", "name": "vc", "namespace": "team-a",
		"values": map[string]any{"replicas": 1.0, "sync": map[string]any{"enabled": true}},
	}
	in := resource.NewPropertyMapFromMap(base)
	live := liveRelease(in, "deployed", map[string]any{"replicas": int64(1), "sync": map[string]any{"enabled": true}})

	if d := diffRelease(in, live, in, "default"); d.changed {
		t.Fatalf("no change expected: %v", d.detailed)
	}

	with := func(k string, v any) resource.PropertyMap {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		m[k] = v
		return resource.NewPropertyMapFromMap(m)
	}
	// values, version and chart changes update in place, with an upgrade
	for _, news := range []resource.PropertyMap{
		with("values", map[string]any{"replicas": 2.0, "sync": map[string]any{"enabled": true}}),
		with("version", "0.35.4"),
		with("chart", "/charts/vcluster-next"),
	} {
		d := diffRelease(in, live, news, "default")
		if !d.changed || len(d.replaces) > 0 || !needsUpgrade(d) {
			t.Errorf("%v: want an in-place upgrade, got %v replaces=%v", news, d.detailed, d.replaces)
		}
	}
	// name and namespace changes replace
	for key, v := range map[string]any{"name": "vc2", "namespace": "team-b"} {
		d := diffRelease(in, live, with(key, v), "default")
		if !reflect.DeepEqual(d.replaces, []string{key}) ||
			d.detailed[key].Kind != pulumirpc.PropertyDiff_UPDATE_REPLACE {
			t.Errorf("%s: want a replacement, got %v %v", key, d.replaces, d.detailed)
		}
	}
	// operational inputs update the state without a new revision
	d := diffRelease(in, live, with("timeout", 600.0), "default")
	if !d.changed || needsUpgrade(d) || len(d.replaces) > 0 {
		t.Errorf("timeout: %v upgrade=%v", d.detailed, needsUpgrade(d))
	}

	// an omitted namespace means the default one: no move while it is the same
	noNS := with("namespace", nil)
	liveDefault := liveRelease(noNS, "deployed", map[string]any{"replicas": int64(1), "sync": map[string]any{"enabled": true}})
	if d := diffRelease(noNS, liveDefault, noNS, "default"); d.changed {
		t.Errorf("defaulted namespace: %v", d.detailed)
	}
	if d := diffRelease(noNS, liveDefault, noNS, ""); d.changed {
		t.Errorf("unknown default namespace: assume the same: %v", d.detailed)
	}
	if d := diffRelease(noNS, liveDefault, noNS, "other"); !contains(d.replaces, "namespace") {
		t.Errorf("a changed default namespace moves the release: %v", d.replaces)
	}
	if d := diffRelease(noNS, liveDefault, with("namespace", "default"), "default"); d.changed && len(d.replaces) > 0 {
		t.Errorf("naming the namespace it already is in is no move: %v", d.replaces)
	}

	// unknown name or namespace in a preview: replacement
	unknownName := in.Copy()
	unknownName["name"] = resource.MakeComputed(resource.NewProperty(""))
	if d := diffRelease(in, live, unknownName, "default"); !contains(d.replaces, "name") {
		t.Errorf("unknown name: %v", d.replaces)
	}
}

func TestDiffReleaseDrift(t *testing.T) {
	in := resource.NewPropertyMapFromMap(map[string]any{
		"chart": "/charts/vcluster", "version": "0.35.3", "name": "vc", "namespace": "team-a",
		"values": map[string]any{"replicas": 1.0},
	})
	// changed outside Pulumi (helm upgrade --set ...): applied again
	live := liveRelease(in, "deployed", map[string]any{"replicas": 1.0, "extra": "x"})
	d := diffRelease(in, live, in, "team-a")
	if d.detailed["values"] == nil || d.detailed["values"].InputDiff || !needsUpgrade(d) {
		t.Errorf("values drift: %v", d.detailed)
	}
	// a failed or interrupted upgrade: retried
	live = liveRelease(in, "failed", map[string]any{"replicas": 1.0})
	if d := diffRelease(in, live, in, "team-a"); d.detailed["status"] == nil || !needsUpgrade(d) {
		t.Errorf("status drift: %v", d.detailed)
	}
	// another chart version deployed (a rollback): applied again
	live = liveRelease(in, "deployed", map[string]any{"replicas": 1.0})
	st := live["status"].ObjectValue()
	st["version"] = resource.NewProperty("0.30.0")
	if d := diffRelease(in, live, in, "team-a"); d.detailed["version"] == nil || len(d.replaces) > 0 {
		t.Errorf("version drift: %v", d.detailed)
	}
	// reuseValues merges the previous values on purpose: no drift there
	reuse := in.Copy()
	reuse["reuseValues"] = resource.NewProperty(true)
	live = liveRelease(reuse, "deployed", map[string]any{"replicas": 1.0, "extra": "x"})
	if d := diffRelease(reuse, live, reuse, "team-a"); d.changed {
		t.Errorf("reuseValues: %v", d.detailed)
	}
}

func TestReleaseOutputsKeepSecrets(t *testing.T) {
	in := resource.PropertyMap{
		"chart": resource.NewProperty("/charts/vcluster"),
		"name":  resource.NewProperty("vc"),
		"values": resource.NewProperty(resource.PropertyMap{
			"token": resource.MakeSecret(resource.NewProperty("s3cr3t")),
			"plain": resource.NewProperty("p"),
		}),
		"repositoryOpts": resource.NewProperty(resource.PropertyMap{"password": resource.NewProperty("pw")}),
	}
	outs := releaseOutputs(in, releaseInfo{
		name: "vc", namespace: "team-a", chart: "vcluster", version: "0.35.3", appVersion: "0.35.3",
		status: "deployed", revision: 2, values: map[string]any{"token": "s3cr3t", "plain": "p"},
		manifest: "---\n# Source: a.yaml\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: vc\n" +
			"---\n# Source: b.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: vc\n" +
			"---\n# Source: c.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: vc-headless\n",
	})
	vals := outs["values"].ObjectValue()
	if !vals["token"].IsSecret() || vals["plain"].IsSecret() {
		t.Errorf("secret values stay secret, others not: %v", vals)
	}
	if !outs["repositoryOpts"].ObjectValue()["password"].IsSecret() {
		t.Errorf("the repository password is always secret")
	}
	st := outs["status"].ObjectValue()
	if st["revision"].NumberValue() != 2 || st["status"].StringValue() != "deployed" ||
		st["namespace"].StringValue() != "team-a" || st["appVersion"].StringValue() != "0.35.3" {
		t.Errorf("status %v", st)
	}
	if v, _ := getString(outs, "version"); v != "0.35.3" {
		t.Errorf("an omitted version is the deployed one: %q", v)
	}
	names := outs["resourceNames"].ObjectValue()
	if got := names["Service/v1"].ArrayValue(); len(got) != 2 || names["StatefulSet/apps/v1"].ArrayValue()[0].StringValue() != "vc" {
		t.Errorf("resourceNames %v", names)
	}
}

func TestManifestObjects(t *testing.T) {
	m := "---\n# Source: a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep-me\n  annotations:\n" +
		"    helm.sh/resource-policy: keep\n---\n# Source: b.yaml\n# only a comment\n---\n# Source: c.yaml\n" +
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: cr\n"
	got := manifestObjects(m)
	want := []manifestObject{
		{apiVersion: "v1", kind: "ConfigMap", name: "keep-me", keep: true},
		{apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "cr"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("manifestObjects = %+v", got)
	}
}
