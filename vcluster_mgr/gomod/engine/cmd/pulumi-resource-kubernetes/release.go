package main

// The kubernetes:helm.sh/v3:Release resource (pulumi_kubernetes.helm.v3.Release):
// its inputs, Check, Diff and outputs. Nothing here talks to a cluster or to a
// chart repository (helm.go does); a local chart is read from disk.

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const releaseType = "kubernetes:helm.sh/v3:Release"

const (
	defaultReleaseTimeout = 300 * time.Second
	defaultMaxHistory     = 10
	maxReleaseNameLen     = 53 // Helm's limit: release names end up in labels and object names
	// managedLabel marks the releases this provider installed (a label of Helm's
	// release Secrets). Only such a release is taken over by a creation, e.g.
	// after a run interrupted between the install and the state write.
	managedLabel = "vcluster-mgr.dev/managed-by"
	managedValue = "pulumi-resource-kubernetes"
)

// releaseSpec is the parsed, validated form of the inputs.
type releaseSpec struct {
	chart, version, name, namespace string
	repo                            repositoryOpts

	skipAwait  bool // default true here: never wait for readiness unless asked
	timeout    time.Duration
	maxHistory int // 0: unlimited

	atomic, cleanupOnFail, createNamespace, skipCrds, dependencyUpdate, devel,
	disableCRDHooks, disableOpenapiValidation, disableWebhooks, forceUpdate, recreatePods,
	renderSubchartNotes, replace, resetValues, reuseValues, verify, waitForJobs, lint,
	takeOwnership, allowNullValues bool
	description, keyring, postrender string
}

type repositoryOpts struct {
	repo, username, password, caFile, certFile, keyFile string
}

func (s releaseSpec) wait() bool { return !s.skipAwait }

// propReader reads typed inputs, collecting failures instead of stopping at the
// first one. Secrets are unwrapped; unknown values are reported via unknown.
type propReader struct {
	m        resource.PropertyMap
	prefix   string
	failures []*pulumirpc.CheckFailure
	unknown  bool
}

func (r *propReader) fail(key, format string, args ...any) {
	r.failures = append(r.failures, &pulumirpc.CheckFailure{Property: r.prefix + key, Reason: fmt.Sprintf(format, args...)})
}

// get returns the value of key; false when absent, null or unknown.
func (r *propReader) get(key string) (resource.PropertyValue, bool) {
	v, ok := r.m[resource.PropertyKey(key)]
	if !ok {
		return v, false
	}
	v = unwrapSecret(v)
	if v.ContainsUnknowns() {
		r.unknown = true
		return v, false
	}
	return v, !v.IsNull()
}

func (r *propReader) str(key string) string {
	v, ok := r.get(key)
	if !ok {
		return ""
	}
	if !v.IsString() {
		r.fail(key, "%s must be a string", key)
		return ""
	}
	return v.StringValue()
}

func (r *propReader) boolean(key string, def bool) bool {
	v, ok := r.get(key)
	switch {
	case !ok:
		return def
	case v.IsBool():
		return v.BoolValue()
	case v.IsString() && (v.StringValue() == "true" || v.StringValue() == "false"):
		return v.StringValue() == "true"
	}
	r.fail(key, "%s must be a boolean", key)
	return def
}

// count reads a non-negative whole number.
func (r *propReader) count(key string, def int) int {
	v, ok := r.get(key)
	if !ok {
		return def
	}
	if !v.IsNumber() || v.NumberValue() < 0 || v.NumberValue() != float64(int(v.NumberValue())) {
		r.fail(key, "%s must be a whole number, 0 or more", key)
		return def
	}
	return int(v.NumberValue())
}

// parseRelease reads the inputs. Values are read separately (releaseValues).
func parseRelease(m resource.PropertyMap) (releaseSpec, *propReader) {
	r := &propReader{m: m}
	s := releaseSpec{
		chart:     r.str("chart"),
		version:   strings.TrimSpace(r.str("version")),
		name:      r.str("name"),
		namespace: r.str("namespace"),

		skipAwait:  r.boolean("skipAwait", true),
		timeout:    time.Duration(r.count("timeout", 0)) * time.Second,
		maxHistory: r.count("maxHistory", defaultMaxHistory),

		atomic:                   r.boolean("atomic", false),
		cleanupOnFail:            r.boolean("cleanupOnFail", false),
		createNamespace:          r.boolean("createNamespace", false),
		skipCrds:                 r.boolean("skipCrds", false),
		dependencyUpdate:         r.boolean("dependencyUpdate", false),
		devel:                    r.boolean("devel", false),
		disableCRDHooks:          r.boolean("disableCRDHooks", false),
		disableOpenapiValidation: r.boolean("disableOpenapiValidation", false),
		disableWebhooks:          r.boolean("disableWebhooks", false),
		forceUpdate:              r.boolean("forceUpdate", false),
		recreatePods:             r.boolean("recreatePods", false),
		renderSubchartNotes:      r.boolean("renderSubchartNotes", false),
		replace:                  r.boolean("replace", false),
		resetValues:              r.boolean("resetValues", false),
		reuseValues:              r.boolean("reuseValues", false),
		verify:                   r.boolean("verify", false),
		waitForJobs:              r.boolean("waitForJobs", false),
		lint:                     r.boolean("lint", false),
		takeOwnership:            r.boolean("takeOwnership", false),
		allowNullValues:          r.boolean("allowNullValues", false),
		description:              r.str("description"),
		keyring:                  r.str("keyring"),
		postrender:               r.str("postrender"),
	}
	if s.timeout == 0 {
		s.timeout = defaultReleaseTimeout
	}
	if v, ok := r.get("repositoryOpts"); ok {
		if !v.IsObject() {
			r.fail("repositoryOpts", "repositoryOpts must be an object")
		} else {
			rr := &propReader{m: v.ObjectValue(), prefix: "repositoryOpts."}
			s.repo = repositoryOpts{
				repo: strings.TrimSpace(rr.str("repo")), username: rr.str("username"), password: rr.str("password"),
				caFile: rr.str("caFile"), certFile: rr.str("certFile"), keyFile: rr.str("keyFile"),
			}
			r.failures = append(r.failures, rr.failures...)
			r.unknown = r.unknown || rr.unknown
		}
	}
	return s, r
}

// ---- values ----

// releaseValues computes the values given to Helm: the valueYamlFiles in order,
// then values on top (maps merge deeply, anything else is replaced). Nulls are
// ignored unless allowNullValues (a null then removes the value of a file or a
// chart default, as in Helm). wholeSecret is set when the values cannot be told apart from a secret
// (valueYamlFiles, or values as a whole, are secret); finer secrets are found
// by toObject. unknown is set during previews when a value is not known yet.
func releaseValues(m resource.PropertyMap, allowNull bool) (vals map[string]any, wholeSecret, unknown bool, err error) {
	vals = map[string]any{}
	if files, ok := m["valueYamlFiles"]; ok && !files.IsNull() {
		wholeSecret = files.ContainsSecrets()
		files = unwrapSecret(files)
		if files.ContainsUnknowns() {
			return nil, wholeSecret, true, nil
		}
		if !files.IsArray() {
			return nil, wholeSecret, false, fmt.Errorf("valueYamlFiles must be a list of assets")
		}
		for i, f := range files.ArrayValue() {
			f = unwrapSecret(f)
			if !f.IsAsset() {
				return nil, wholeSecret, false, fmt.Errorf("valueYamlFiles[%d] must be an asset (a file or a string)", i)
			}
			a := f.AssetValue()
			if a.IsURI() {
				return nil, wholeSecret, false, fmt.Errorf("valueYamlFiles[%d]: remote assets (%s) are not supported; use a file or a string", i, a.URI)
			}
			data, err := a.Bytes()
			if err != nil {
				return nil, wholeSecret, false, fmt.Errorf("valueYamlFiles[%d]: %w", i, err)
			}
			fileVals, err := chartutil.ReadValues(data)
			if err != nil {
				return nil, wholeSecret, false, fmt.Errorf("valueYamlFiles[%d] is not a YAML map: %w", i, err)
			}
			if !allowNull {
				dropNulls(fileVals)
			}
			mergeValues(vals, fileVals)
		}
	}
	if v, ok := m["values"]; ok && !v.IsNull() {
		if v.IsSecret() {
			wholeSecret = true
		}
		if unwrapSecret(v).ContainsUnknowns() {
			return nil, wholeSecret, true, nil
		}
		if !unwrapSecret(v).IsObject() {
			return nil, wholeSecret, false, fmt.Errorf("values must be a map")
		}
		obj, _, _ := toObject(resource.PropertyMap{"values": v})
		if given, ok := obj["values"].(map[string]any); ok {
			if !allowNull {
				dropNulls(given)
			}
			mergeValues(vals, given)
		}
	}
	return vals, wholeSecret, false, nil
}

// mergeValues merges src into dst, src winning; maps on both sides merge.
func mergeValues(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
			cp := map[string]any{}
			mergeValues(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = sv
	}
}

func dropNulls(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			dropNulls(t)
		}
	}
}

// ---- where the chart comes from ----

type chartSource int

const (
	chartLocal      chartSource = iota // a directory or a packaged .tgz on disk
	chartRepository                    // a chart name in an HTTP(S) chart repository (repositoryOpts.repo)
	chartOCI                           // an oci:// reference
	chartURL                           // a direct http(s) URL of a packaged chart
	chartRepoName                      // "repo/chart", a repository of Helm's own configuration
	chartMissing                       // none of the above
)

// classifyChart tells where a chart comes from; ref is what Helm locates (an
// oci:// repository and a chart name are joined; a named Helm repository too).
func classifyChart(chart string, repo repositoryOpts) (src chartSource, ref string) {
	chart = strings.TrimSpace(chart)
	switch {
	case strings.HasPrefix(chart, "oci://"):
		return chartOCI, chart
	case strings.HasPrefix(repo.repo, "oci://"):
		return chartOCI, strings.TrimSuffix(repo.repo, "/") + "/" + chart
	case repo.repo != "" && strings.Contains(repo.repo, "://"):
		return chartRepository, chart
	case repo.repo != "":
		return chartRepoName, repo.repo + "/" + chart
	}
	if _, err := os.Stat(chart); err == nil {
		return chartLocal, chart
	}
	switch {
	case strings.HasPrefix(chart, "http://") || strings.HasPrefix(chart, "https://"):
		return chartURL, chart
	case chart == "" || filepath.IsAbs(chart) || strings.HasPrefix(chart, ".") || strings.HasSuffix(chart, ".tgz"):
		return chartMissing, chart
	case strings.Count(chart, "/") == 1:
		return chartRepoName, chart
	}
	return chartMissing, chart
}

// ---- Check ----

// checkRelease validates the inputs and fills in what the program left out:
// the release name (kept from the previous inputs, else derived from the
// resource name) and, for a local chart, its version, so that bumping the
// chart's version rolls it out. A version given for a local chart must match.
func checkRelease(urnName string, olds, news resource.PropertyMap, seed []byte) (
	resource.PropertyMap, []*pulumirpc.CheckFailure,
) {
	s, r := parseRelease(news)
	failures := r.failures
	fail := func(prop, format string, args ...any) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: prop, Reason: fmt.Sprintf(format, args...)})
	}
	out := news.Copy()

	if s.chart == "" && !isUnknownAt(news, "chart") {
		fail("chart", "chart is required: a local chart path, a chart name with repositoryOpts.repo, or an oci:// reference")
	}
	if s.chart != "" && !isUnknownAt(news, "repositoryOpts") {
		switch src, _ := classifyChart(s.chart, s.repo); src {
		case chartMissing:
			fail("chart", "chart %q is not found: it is neither an existing local path (relative paths are "+
				"relative to the program's directory) nor an oci:// reference; for a chart of a repository, "+
				"set repositoryOpts.repo", s.chart)
		case chartLocal:
			ch, err := loader.Load(s.chart)
			if err != nil {
				fail("chart", "cannot load the local chart %s: %v", s.chart, err)
				break
			}
			switch {
			case isUnknownAt(news, "version"):
			case s.version == "":
				out["version"] = resource.NewProperty(ch.Metadata.Version)
			case s.version != ch.Metadata.Version:
				fail("version", "version %q was asked for, but the local chart %s is version %q", s.version,
					s.chart, ch.Metadata.Version)
			}
		}
	}

	if !isUnknownAt(news, "name") {
		if s.name == "" {
			s.name, _ = getString(olds, "name")
			if s.name == "" {
				s.name = autoNameMax(urnName, seed, maxReleaseNameLen)
			}
			out["name"] = resource.NewProperty(s.name)
		}
		if err := chartutil.ValidateReleaseName(s.name); err != nil {
			fail("name", "release name %q is invalid: %v", s.name, err)
		}
	}
	if s.namespace != "" {
		for _, msg := range validation.IsDNS1123Label(s.namespace) {
			fail("namespace", "namespace %q is invalid: %s", s.namespace, msg)
		}
	}
	if _, _, _, err := releaseValues(news, s.allowNullValues); err != nil {
		fail("values", "%v", err)
	}
	return out, failures
}

// ---- Diff ----

// operationalKeys are inputs that change how operations run, not what is
// deployed: a change of only these updates the state without a Helm upgrade.
var operationalKeys = map[string]bool{
	"atomic": true, "cleanupOnFail": true, "compat": true, "createNamespace": true, "dependencyUpdate": true,
	"devel": true, "disableCRDHooks": true, "disableOpenapiValidation": true, "disableWebhooks": true,
	"forceUpdate": true, "keyring": true, "lint": true, "manifest": true, "maxHistory": true,
	"recreatePods": true, "renderSubchartNotes": true, "replace": true, "resetValues": true,
	"resourceNames": true, "reuseValues": true, "skipAwait": true, "skipCrds": true, "takeOwnership": true,
	"timeout": true, "verify": true, "waitForJobs": true,
}

// diffRelease compares the previous inputs with the new ones, and the new ones
// with the release as last read (oldLive, after a refresh): a release that is
// not deployed (a failed or interrupted upgrade), values changed outside
// Pulumi or another chart version are applied again. A new name or namespace
// is a new release: it replaces the old one (deleting first).
func diffRelease(oldInputs, oldLive, news resource.PropertyMap, defaultNamespace string) objectDiff {
	d := objectDiff{detailed: map[string]*pulumirpc.PropertyDiff{}}
	diffValues(resource.PropertyPath{}, resource.NewProperty(stripInternal(oldInputs)),
		resource.NewProperty(stripInternal(news)), d.detailed)

	if status, ok := getString(oldLive, "status", "status"); ok && status != "deployed" {
		d.detailed["status"] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE}
	}
	if liveVals, ok := oldLive["values"]; ok && !sameObject(oldInputs, oldLive) && !hasDiffUnder(d.detailed, "values") {
		allowNull, _ := unwrapSecret(news["allowNullValues"]).V.(bool)
		reuse, _ := unwrapSecret(news["reuseValues"]).V.(bool)
		if want, _, unknown, err := releaseValues(news, allowNull); err == nil && !unknown && !reuse &&
			!reflect.DeepEqual(plainValues(want), plain(liveVals)) {
			d.detailed["values"] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE}
		}
	}
	if want, ok := getString(news, "version"); ok && want != "" && !hasDiffUnder(d.detailed, "version") {
		if live, ok := getString(oldLive, "status", "version"); ok && live != "" && live != want {
			d.detailed["version"] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE}
		}
	}

	replace := func(key string) {
		markReplace(d.detailed, key)
		d.replaces = append(d.replaces, key)
	}

	oldName := releaseName(oldLive)
	if oldName == "" {
		oldName, _ = getString(oldInputs, "name")
	}
	if newName, _ := getString(news, "name"); isUnknownAt(news, "name") || newName != oldName {
		replace("name")
	}

	oldNS := releaseNamespace(oldLive)
	if oldNS == "" {
		oldNS, _ = getString(oldInputs, "namespace")
	}
	newNS, _ := getString(news, "namespace")
	oldInNS, _ := getString(oldInputs, "namespace")
	switch {
	case isUnknownAt(news, "namespace"):
		replace("namespace")
	case newNS == "" && oldInNS == "" && defaultNamespace == "":
		// Defaulted before and now, and today's default is not known yet.
	default:
		if newNS == "" {
			newNS = defaultNamespace
		}
		if oldNS != "" && newNS != oldNS {
			replace("namespace")
		}
	}

	d.finish()
	return d
}

// needsUpgrade tells whether a diff changes what is deployed (chart, version,
// values, ...), rather than only how later operations run.
func needsUpgrade(d objectDiff) bool {
	for p := range d.detailed {
		if !operationalKeys[topKey(p)] {
			return true
		}
	}
	return false
}

func topKey(p string) string {
	if path, err := resource.ParsePropertyPath(p); err == nil && len(path) > 0 {
		if s, ok := path[0].(string); ok {
			return s
		}
	}
	return p
}

func hasDiffUnder(detailed map[string]*pulumirpc.PropertyDiff, key string) bool {
	for p := range detailed {
		if topKey(p) == key {
			return true
		}
	}
	return false
}

// plainValues gives values in the form plain() gives property values, so that
// Helm's values and Pulumi's compare equal when they are.
func plainValues(v map[string]any) any {
	return plain(resource.NewProperty(resource.NewPropertyMapFromMap(v)))
}

// releaseName and releaseNamespace read where a release lives from its outputs.
func releaseName(outs resource.PropertyMap) string {
	if s, ok := getString(outs, "status", "name"); ok && s != "" {
		return s
	}
	s, _ := getString(outs, "name")
	return s
}

func releaseNamespace(outs resource.PropertyMap) string {
	if s, ok := getString(outs, "status", "namespace"); ok && s != "" {
		return s
	}
	s, _ := getString(outs, "namespace")
	return s
}

// ---- outputs ----

// releaseInfo is what the outputs need from a Helm release.
type releaseInfo struct {
	name, namespace, chart, version, appVersion, status string
	revision                                            int
	values                                              map[string]any
	manifest                                            string
}

// releaseOutputs builds the outputs: the inputs, with the release's name,
// namespace and values (as Helm has them) and its status. Where the inputs
// were secret, so are the outputs; the repository password always is.
func releaseOutputs(inputs resource.PropertyMap, rel releaseInfo) resource.PropertyMap {
	_, secretPaths, _ := toObject(inputs)
	in := stripInternal(inputs)
	outs := resource.PropertyMap{}
	for k, v := range in {
		outs[k] = v
	}
	outs["name"] = resource.NewProperty(rel.name)
	outs["namespace"] = resource.NewProperty(rel.namespace)
	if s, _ := getString(in, "version"); s == "" && rel.version != "" {
		outs["version"] = resource.NewProperty(rel.version)
	}
	vals := rel.values
	if vals == nil {
		vals = map[string]any{}
	}
	_, wholeSecret, _, _ := releaseValues(in, true)
	outs["values"] = resource.NewProperty(resource.NewPropertyMapFromMap(vals))
	if wholeSecret {
		outs["values"] = resource.MakeSecret(outs["values"])
	}
	outs["status"] = resource.NewProperty(resource.PropertyMap{
		"name":       resource.NewProperty(rel.name),
		"namespace":  resource.NewProperty(rel.namespace),
		"chart":      resource.NewProperty(rel.chart),
		"version":    resource.NewProperty(rel.version),
		"appVersion": resource.NewProperty(rel.appVersion),
		"revision":   resource.NewProperty(float64(rel.revision)),
		"status":     resource.NewProperty(rel.status),
	})
	names := map[string]any{}
	for _, o := range manifestObjects(rel.manifest) {
		key := o.kind + "/" + o.apiVersion
		list, _ := names[key].([]any)
		id := o.name
		if o.namespace != "" && o.namespace != rel.namespace {
			id = formatID(o.namespace, o.name)
		}
		names[key] = append(list, id)
	}
	outs["resourceNames"] = resource.NewProperty(resource.NewPropertyMapFromMap(names))

	root := resource.NewProperty(outs)
	for _, p := range secretPaths {
		if v, ok := p.Get(root); ok && !v.IsSecret() {
			p.Set(root, resource.MakeSecret(v))
		}
	}
	if ro, ok := outs["repositoryOpts"]; ok && unwrapSecret(ro).IsObject() && !ro.IsSecret() {
		opts := unwrapSecret(ro).ObjectValue().Copy()
		if pw, ok := opts["password"]; ok && !pw.IsNull() && !pw.IsSecret() {
			opts["password"] = resource.MakeSecret(pw)
			outs["repositoryOpts"] = resource.NewProperty(opts)
		}
	}
	return outs
}

// importedInputs are the inputs of a release read without any (`pulumi import`).
func importedInputs(rel releaseInfo) resource.PropertyMap {
	in := resource.PropertyMap{
		"chart":     resource.NewProperty(rel.chart),
		"version":   resource.NewProperty(rel.version),
		"name":      resource.NewProperty(rel.name),
		"namespace": resource.NewProperty(rel.namespace),
	}
	if len(rel.values) > 0 {
		in["values"] = resource.NewProperty(resource.NewPropertyMapFromMap(rel.values))
	}
	return in
}

// manifestObject is one object of a release's manifest.
type manifestObject struct {
	apiVersion, kind, namespace, name string
	keep                              bool // helm.sh/resource-policy: keep (uninstall leaves it)
}

// manifestObjects lists the objects of a rendered manifest, in a stable order.
func manifestObjects(manifest string) []manifestObject {
	var out []manifestObject
	docs := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for _, k := range keys {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name        string            `json:"name"`
				Namespace   string            `json:"namespace"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(docs[k]), &head); err != nil || head.Kind == "" || head.Metadata.Name == "" {
			continue
		}
		out = append(out, manifestObject{
			apiVersion: head.APIVersion, kind: head.Kind,
			namespace: head.Metadata.Namespace, name: head.Metadata.Name,
			keep: head.Metadata.Annotations["helm.sh/resource-policy"] == "keep",
		})
	}
	return out
}
