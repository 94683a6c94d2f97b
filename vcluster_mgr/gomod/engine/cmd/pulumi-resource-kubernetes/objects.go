package main

// Pure helpers: nothing here talks to a cluster, so all of it is unit-tested.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// ---- provider configuration ----

const defaultDeleteTimeout = 300 * time.Second

type providerConfig struct {
	// kubeconfig is either a file path or the kubeconfig document itself;
	// kubeconfigIsContent tells which.
	kubeconfig          string
	kubeconfigIsContent bool
	context             string
	namespace           string
	deleteTimeout       time.Duration
	// unknown is set during previews when a value depends on another
	// resource's output; the cluster must not be contacted then.
	unknown bool
}

// parseConfig reads the provider's configuration. The engine sends it both as
// a property map (args, preferred) and as `kubernetes:config:<key>` strings
// (vars); the Python SDK JSON-encodes non-string values, so every value is
// accepted either as its natural type or as a JSON string.
func parseConfig(vars map[string]string, args resource.PropertyMap) (providerConfig, error) {
	raw := map[string]resource.PropertyValue{}
	for k, v := range vars {
		raw[k[strings.LastIndex(k, ":")+1:]] = resource.NewProperty(v)
	}
	for k, v := range args { // args win: they keep types and secrecy
		raw[string(k)] = v
	}

	cfg := providerConfig{deleteTimeout: defaultDeleteTimeout}
	str := func(key string) string {
		v, ok := raw[key]
		if !ok {
			return ""
		}
		for v.IsSecret() {
			v = v.SecretValue().Element
		}
		if v.ContainsUnknowns() {
			cfg.unknown = true
			return ""
		}
		if !v.IsString() {
			return ""
		}
		return unquoteJSONString(v.StringValue())
	}

	cfg.kubeconfig = str("kubeconfig")
	cfg.context = str("context")
	cfg.namespace = str("namespace")
	if cfg.kubeconfig != "" {
		cfg.kubeconfigIsContent = looksLikeKubeconfigContent(cfg.kubeconfig)
		if !cfg.kubeconfigIsContent {
			cfg.kubeconfig = expandHome(cfg.kubeconfig)
		}
	}

	if v, ok := raw["deleteTimeoutSeconds"]; ok && !v.ContainsUnknowns() {
		for v.IsSecret() {
			v = v.SecretValue().Element
		}
		var secs float64
		switch {
		case v.IsNumber():
			secs = v.NumberValue()
		case v.IsString():
			f, err := strconv.ParseFloat(strings.TrimSpace(unquoteJSONString(v.StringValue())), 64)
			if err != nil {
				return cfg, fmt.Errorf("deleteTimeoutSeconds: %q is not a number", v.StringValue())
			}
			secs = f
		}
		if secs > 0 {
			cfg.deleteTimeout = time.Duration(secs * float64(time.Second))
		}
	}
	return cfg, nil
}

// unquoteJSONString turns `"abc"` into `abc`; anything else is returned as is.
func unquoteJSONString(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		var out string
		if json.Unmarshal([]byte(s), &out) == nil {
			return out
		}
	}
	return s
}

// looksLikeKubeconfigContent distinguishes an inline kubeconfig (YAML or JSON)
// from a path: a path never spans lines nor starts a YAML/JSON document.
func looksLikeKubeconfigContent(s string) bool {
	t := strings.TrimSpace(s)
	return strings.Contains(t, "\n") || strings.HasPrefix(t, "{") || strings.HasPrefix(t, "apiVersion:") ||
		strings.HasPrefix(t, "kind:") || strings.HasPrefix(t, "clusters:")
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// ---- object identity ----

// formatID is the Pulumi ID of an object: "namespace/name" when namespaced,
// "name" when cluster-scoped. Names cannot contain "/", so it is unambiguous.
func formatID(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

func parseID(id string) (namespace, name string, err error) {
	parts := strings.Split(id, "/")
	switch {
	case len(parts) == 1 && parts[0] != "":
		return "", parts[0], nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("invalid ID %q: expected \"name\" or \"namespace/name\"", id)
}

// apiGroup returns the group part of an apiVersion ("apps/v1" -> "apps",
// "v1" -> ""): a version change alone is the same object, a group change is not.
func apiGroup(apiVersion string) string {
	if i := strings.Index(apiVersion, "/"); i >= 0 {
		return apiVersion[:i]
	}
	return ""
}

// getString reads a string at a path, unwrapping secrets. ok is false when the
// value is absent, unknown or not a string.
func getString(m resource.PropertyMap, path ...any) (string, bool) {
	if m == nil {
		return "", false
	}
	v, ok := resource.PropertyPath(path).Get(resource.NewProperty(m))
	if !ok {
		return "", false
	}
	v = unwrapSecret(v)
	if !v.IsString() {
		return "", false
	}
	return v.StringValue(), true
}

func isUnknownAt(m resource.PropertyMap, path ...any) bool {
	v, ok := resource.PropertyPath(path).Get(resource.NewProperty(m))
	return ok && unwrapSecret(v).ContainsUnknowns()
}

func unwrapSecret(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

// ---- Check ----

// checkObject validates the inputs and fills metadata.name when the program
// left it out (autonaming). The name of an existing object is reused so that
// later updates keep addressing it; a new one is derived from the resource name
// plus a suffix that is stable for a given seed (the engine passes one so that
// previews and updates agree).
func checkObject(urnName string, olds, news resource.PropertyMap, seed []byte) (
	resource.PropertyMap, []*pulumirpc.CheckFailure,
) {
	var failures []*pulumirpc.CheckFailure
	for _, key := range []string{"apiVersion", "kind"} {
		if isUnknownAt(news, key) {
			continue
		}
		if s, ok := getString(news, key); !ok || s == "" {
			failures = append(failures, &pulumirpc.CheckFailure{
				Property: key, Reason: fmt.Sprintf("%s is required and must be a string", key),
			})
		}
	}
	if len(failures) > 0 {
		return news, failures
	}

	if _, ok := getString(news, "metadata", "name"); ok || isUnknownAt(news, "metadata", "name") {
		return news, nil
	}
	meta := resource.PropertyMap{}
	if mv, ok := news["metadata"]; ok {
		if mv = unwrapSecret(mv); mv.IsObject() {
			meta = mv.ObjectValue().Copy()
		} else if !mv.IsNull() {
			return news, []*pulumirpc.CheckFailure{{Property: "metadata", Reason: "metadata must be an object"}}
		}
	}
	name, ok := getString(olds, "metadata", "name")
	if !ok || name == "" {
		name = autoName(urnName, seed)
	}
	meta["name"] = resource.NewProperty(name)
	out := news.Copy()
	out["metadata"] = resource.NewProperty(meta)
	return out, nil
}

// autoName builds "<sanitised resource name>-<8 hex chars>", a valid DNS-1123
// name for the common kinds.
func autoName(base string, seed []byte) string { return autoNameMax(base, seed, 61) }

// autoNameMax is autoName for names of at most maxLen characters.
func autoNameMax(base string, seed []byte, maxLen int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	prefix := strings.Trim(b.String(), "-.")
	if keep := maxLen - 9; len(prefix) > keep { // 9: "-" and the suffix
		prefix = strings.TrimRight(prefix[:keep], "-.")
	}
	var suffix []byte
	if len(seed) > 0 {
		sum := sha256.Sum256(append(append([]byte{}, seed...), base...))
		suffix = sum[:4]
	} else {
		suffix = make([]byte, 4)
		_, _ = rand.Read(suffix)
	}
	if prefix == "" {
		return "obj-" + hex.EncodeToString(suffix)
	}
	return prefix + "-" + hex.EncodeToString(suffix)
}

// ---- conversion between Pulumi properties and Kubernetes objects ----

// toObject converts checked inputs into a plain JSON-like object for the
// Kubernetes API, remembering where secrets were so that they can be
// re-applied to the outputs. hasUnknowns reports values not known yet (only
// possible during previews).
func toObject(m resource.PropertyMap) (obj map[string]any, secretPaths []resource.PropertyPath, hasUnknowns bool) {
	var walk func(v resource.PropertyValue, path resource.PropertyPath) any
	walk = func(v resource.PropertyValue, path resource.PropertyPath) any {
		switch {
		case v.IsSecret():
			secretPaths = append(secretPaths, append(resource.PropertyPath{}, path...))
			return walk(v.SecretValue().Element, path)
		case v.IsComputed():
			hasUnknowns = true
			return nil
		case v.IsNull():
			return nil
		case v.IsBool():
			return v.BoolValue()
		case v.IsNumber():
			// Kubernetes rejects 3.0 where it expects an integer.
			n := v.NumberValue()
			if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				return int64(n)
			}
			return n
		case v.IsString():
			return v.StringValue()
		case v.IsArray():
			arr := make([]any, len(v.ArrayValue()))
			for i, e := range v.ArrayValue() {
				arr[i] = walk(e, append(path, i))
			}
			return arr
		case v.IsObject():
			out := map[string]any{}
			for k, e := range v.ObjectValue() {
				if strings.HasPrefix(string(k), "__") {
					continue
				}
				out[string(k)] = walk(e, append(path, string(k)))
			}
			return out
		}
		// Assets and archives have no meaning in a Kubernetes object. Output
		// values and resource references do not reach here: unmarshalling
		// without KeepOutputValues/KeepResources turns them into plain values.
		return nil
	}
	obj = walk(resource.NewProperty(m), nil).(map[string]any)
	return obj, secretPaths, hasUnknowns
}

// toOutputs turns a live object into Pulumi outputs, marking as secret
// everything that was secret in the inputs, plus the payload of Secrets.
func toOutputs(live map[string]any, secretPaths []resource.PropertyPath) resource.PropertyMap {
	outs := resource.NewPropertyMapFromMap(live)
	root := resource.NewProperty(outs)
	for _, p := range secretPaths {
		if len(p) == 0 {
			continue
		}
		if v, ok := p.Get(root); ok && !v.IsSecret() {
			p.Set(root, resource.MakeSecret(v))
		}
	}
	if kind, _ := getString(outs, "kind"); kind == "Secret" && apiGroup(stringOr(outs, "apiVersion")) == "" {
		for _, k := range []resource.PropertyKey{"data", "stringData"} {
			if v, ok := outs[k]; ok && !v.IsSecret() {
				outs[k] = resource.MakeSecret(v)
			}
		}
	}
	return outs
}

func stringOr(m resource.PropertyMap, key string) string {
	s, _ := getString(m, key)
	return s
}

// importInputs derives inputs from a live object when the engine reads a
// resource it has no inputs for (e.g. `pulumi import`): the object without
// status and without the fields the API server fills in.
func importInputs(live map[string]any) map[string]any {
	in := map[string]any{}
	for k, v := range live {
		if k != "status" {
			in[k] = v
		}
	}
	if md, ok := live["metadata"].(map[string]any); ok {
		keep := map[string]any{}
		for _, k := range []string{"name", "namespace", "labels", "annotations"} {
			if v, ok := md[k]; ok {
				keep[k] = v
			}
		}
		if ann, ok := keep["annotations"].(map[string]any); ok {
			delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		}
		in["metadata"] = keep
	}
	return in
}

// ---- Diff ----

type objectDiff struct {
	changed  bool
	keys     []string // changed top-level keys
	replaces []string // top-level keys whose change forces a replacement
	detailed map[string]*pulumirpc.PropertyDiff
}

// diffObject compares the previous inputs with the new ones. oldLive is the
// previous output state; it tells where the object really lives (namespace
// defaulting happens at apply time), so that omitting the default namespace is
// not mistaken for a move. defaultNamespace is what an omitted namespace means
// with the current provider configuration ("" when not known yet).
func diffObject(oldInputs, oldLive, news resource.PropertyMap, defaultNamespace string) objectDiff {
	d := objectDiff{detailed: map[string]*pulumirpc.PropertyDiff{}}
	diffValues(resource.PropertyPath{}, resource.NewProperty(stripInternal(oldInputs)),
		resource.NewProperty(stripInternal(news)), d.detailed)
	// Drift: after a refresh the old outputs are the live object. Any field we set
	// whose live value differs (changed or removed outside Pulumi) is applied again.
	// Only paths present in the inputs count, so server defaults never show up.
	if len(oldLive) > 0 && !sameObject(oldInputs, oldLive) {
		driftValues(resource.PropertyPath{}, resource.NewProperty(stripInternal(oldLive)),
			resource.NewProperty(stripInternal(news)), d.detailed)
	}

	replacePaths := map[string]bool{}
	oldGV, newGV := stringOr(oldInputs, "apiVersion"), stringOr(news, "apiVersion")
	if isUnknownAt(news, "apiVersion") || apiGroup(oldGV) != apiGroup(newGV) {
		replacePaths["apiVersion"] = true
	}
	if isUnknownAt(news, "kind") || stringOr(oldInputs, "kind") != stringOr(news, "kind") {
		replacePaths["kind"] = true
	}

	oldName, ok := getString(oldLive, "metadata", "name")
	if !ok {
		oldName, _ = getString(oldInputs, "metadata", "name")
	}
	if newName, _ := getString(news, "metadata", "name"); isUnknownAt(news, "metadata", "name") || newName != oldName {
		replacePaths["metadata.name"] = true
	}

	oldNS, ok := getString(oldLive, "metadata", "namespace")
	if !ok {
		oldNS, _ = getString(oldInputs, "metadata", "namespace")
	}
	newNS, _ := getString(news, "metadata", "namespace")
	oldInNS, _ := getString(oldInputs, "metadata", "namespace")
	switch {
	case isUnknownAt(news, "metadata", "namespace"):
		replacePaths["metadata.namespace"] = true
	case oldNS == "":
		// Cluster-scoped (or never applied): a namespace there is ignored.
	case newNS == "" && oldInNS == "" && defaultNamespace == "":
		// Defaulted before and now, and today's default is not known (the
		// provider configuration is not known in this preview): assume the
		// same. When it is known, a changed default moves the object.
	default:
		if newNS == "" {
			newNS = defaultNamespace
		}
		if newNS != oldNS {
			replacePaths["metadata.namespace"] = true
		}
	}

	for p := range replacePaths {
		top := strings.SplitN(p, ".", 2)[0]
		if !contains(d.replaces, top) {
			d.replaces = append(d.replaces, top)
		}
		markReplace(d.detailed, p)
	}

	d.finish()
	return d
}

// finish derives the changed top-level keys from the detailed diff, sorts, and
// sets changed.
func (d *objectDiff) finish() {
	for p := range d.detailed {
		if top := topKey(p); !contains(d.keys, top) {
			d.keys = append(d.keys, top)
		}
	}
	sort.Strings(d.keys)
	sort.Strings(d.replaces)
	d.changed = len(d.detailed) > 0
}

// diffValues records, for each differing leaf (or the smallest differing
// subtree), an ADD/DELETE/UPDATE entry keyed by its property path.
func diffValues(path resource.PropertyPath, old, new resource.PropertyValue, out map[string]*pulumirpc.PropertyDiff) {
	old, new = unwrapSecret(old), unwrapSecret(new)
	record := func(p resource.PropertyPath, k pulumirpc.PropertyDiff_Kind) {
		out[p.String()] = &pulumirpc.PropertyDiff{Kind: k, InputDiff: true}
	}
	switch {
	case new.IsComputed():
		record(path, pulumirpc.PropertyDiff_UPDATE)
	case old.IsObject() && new.IsObject():
		om, nm := old.ObjectValue(), new.ObjectValue()
		for k, ov := range om {
			child := append(append(resource.PropertyPath{}, path...), string(k))
			if nv, ok := nm[k]; !ok || nv.IsNull() {
				if !ov.IsNull() {
					record(child, pulumirpc.PropertyDiff_DELETE)
				}
			} else {
				diffValues(child, ov, nv, out)
			}
		}
		for k, nv := range nm {
			child := append(append(resource.PropertyPath{}, path...), string(k))
			if ov, ok := om[k]; (!ok || ov.IsNull()) && !nv.IsNull() {
				record(child, pulumirpc.PropertyDiff_ADD)
			}
		}
	case old.IsArray() && new.IsArray():
		oa, na := old.ArrayValue(), new.ArrayValue()
		for i := 0; i < len(oa) || i < len(na); i++ {
			child := append(append(resource.PropertyPath{}, path...), i)
			switch {
			case i >= len(na):
				record(child, pulumirpc.PropertyDiff_DELETE)
			case i >= len(oa):
				record(child, pulumirpc.PropertyDiff_ADD)
			default:
				diffValues(child, oa[i], na[i], out)
			}
		}
	default:
		if !reflect.DeepEqual(plain(old), plain(new)) {
			record(path, pulumirpc.PropertyDiff_UPDATE)
		}
	}
}

// markReplace turns the detailed diff at key into its replacing kind (adding an
// UPDATE_REPLACE entry when the key had no diff of its own).
func markReplace(detailed map[string]*pulumirpc.PropertyDiff, key string) {
	pd, ok := detailed[key]
	if !ok {
		pd = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE, InputDiff: true}
		detailed[key] = pd
	}
	switch pd.Kind {
	case pulumirpc.PropertyDiff_ADD:
		pd.Kind = pulumirpc.PropertyDiff_ADD_REPLACE
	case pulumirpc.PropertyDiff_DELETE:
		pd.Kind = pulumirpc.PropertyDiff_DELETE_REPLACE
	case pulumirpc.PropertyDiff_UPDATE:
		pd.Kind = pulumirpc.PropertyDiff_UPDATE_REPLACE
	}
}

// diffInputs reads a Diff request: old inputs (the old outputs on engines that
// predate old_inputs), old outputs (the live object after a refresh) and news.
func diffInputs(req *pulumirpc.DiffRequest) (oldInputs, oldLive, news resource.PropertyMap, err error) {
	if oldLive, err = unmarshal(req.GetOlds()); err != nil {
		return nil, nil, nil, err
	}
	oldInputs = oldLive
	if req.GetOldInputs() != nil {
		if oldInputs, err = unmarshal(req.GetOldInputs()); err != nil {
			return nil, nil, nil, err
		}
	}
	news, err = unmarshal(req.GetNews())
	return oldInputs, oldLive, news, err
}

// sameObject is true when the "live" map is really the inputs (engines that do
// not send old inputs), where a drift check would compare a thing with itself.
func sameObject(a, b resource.PropertyMap) bool {
	return reflect.DeepEqual(plain(resource.NewProperty(stripInternal(a))), plain(resource.NewProperty(stripInternal(b))))
}

// driftValues records an UPDATE for every leaf of new (the desired inputs)
// whose value in live differs or is missing. Unlike diffValues it ignores what
// live has beyond the inputs (defaults, status, fields of other managers).
func driftValues(path resource.PropertyPath, live, new resource.PropertyValue, out map[string]*pulumirpc.PropertyDiff) {
	live, new = unwrapSecret(live), unwrapSecret(new)
	key := path.String()
	if _, seen := out[key]; seen && key != "" {
		return
	}
	record := func() {
		out[key] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE, InputDiff: false}
	}
	switch {
	case new.IsComputed() || new.IsNull():
		return
	case isEmptyCollection(new) && (live.IsNull() || isEmptyCollection(live)):
		// The API server drops empty maps and lists (a ConfigMap's `data: {}`).
		return
	case new.IsObject():
		if !live.IsObject() {
			record()
			return
		}
		lm := live.ObjectValue()
		for k, nv := range new.ObjectValue() {
			child := append(append(resource.PropertyPath{}, path...), string(k))
			driftValues(child, lm[k], nv, out)
		}
	case new.IsArray():
		if !live.IsArray() || len(live.ArrayValue()) != len(new.ArrayValue()) {
			record()
			return
		}
		la := live.ArrayValue()
		for i, nv := range new.ArrayValue() {
			child := append(append(resource.PropertyPath{}, path...), i)
			driftValues(child, la[i], nv, out)
		}
	default:
		if !reflect.DeepEqual(plain(live), plain(new)) {
			record()
		}
	}
}

func isEmptyCollection(v resource.PropertyValue) bool {
	return (v.IsObject() && len(v.ObjectValue()) == 0) || (v.IsArray() && len(v.ArrayValue()) == 0)
}

// plain gives a comparable value for leaves (secrets unwrapped, numbers as float).
func plain(v resource.PropertyValue) any {
	v = unwrapSecret(v)
	if v.IsObject() || v.IsArray() {
		obj, _, _ := toObject(resource.PropertyMap{"v": v})
		return obj["v"]
	}
	return v.V
}

func stripInternal(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		if !strings.HasPrefix(string(k), "__") {
			out[k] = v
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// configDiff lists the configuration keys whose values changed. A provider
// configuration change never replaces objects: they are the same objects,
// possibly reached through different credentials.
func configDiff(olds, news resource.PropertyMap) []string {
	var keys []string
	seen := map[resource.PropertyKey]bool{}
	for k := range olds {
		seen[k] = true
	}
	for k := range news {
		seen[k] = true
	}
	for k := range seen {
		if strings.HasPrefix(string(k), "__") {
			continue
		}
		ov, ook := olds[k]
		nv, nok := news[k]
		if ook != nok || nv.ContainsUnknowns() || !reflect.DeepEqual(plain(ov), plain(nv)) {
			keys = append(keys, string(k))
		}
	}
	sort.Strings(keys)
	return keys
}
