// Command pulumi-resource-kubernetes is a small, generic Kubernetes resource
// provider for Pulumi, used by vcluster-mgr instead of the upstream provider.
//
// Why it exists: the upstream provider (github.com/pulumi/pulumi-kubernetes/
// provider/v4) is not served by the Go module proxy our build machines can
// reach, so it cannot be built there. The engine loads plugin `kubernetes`
// 4.34.2 for the pulumi_kubernetes Python SDK; this binary answers in its place
// (found on PATH or declared as a project plugin).
//
// What it implements: every typed resource of the SDK (type tokens such as
// `kubernetes:core/v1:Namespace`) is handled the same way, from the object's
// own apiVersion/kind, with server-side apply (field manager "vcluster-mgr"):
//   - Check (required fields, autonaming of metadata.name), Diff (input
//     comparison; a change of group, kind, name or namespace replaces, deleting
//     first), Create/Update (apply; previews never touch the cluster), Read
//     (refresh/import), Delete (waits until the object is really gone);
//   - provider configuration: kubeconfig (path or content), context, namespace,
//     deleteTimeoutSeconds; other keys of the upstream provider are ignored.
//
// One resource is not an object: kubernetes:helm.sh/v3:Release, a Helm release
// installed, upgraded and uninstalled with the Helm Go SDK (release.go,
// release_provider.go, helm.go). Unlike upstream, it does not wait for
// readiness unless skipAwait is false.
//
// Not implemented: Invoke/Call/Construct (so no helm.v3.Chart, yaml.ConfigFile
// or other component/function of the SDK), await logic for objects (readiness
// of Deployments etc. is not waited for), client-side apply,
// renderYamlToDirectory.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"vcluster-mgr.dev/toolchain/internal/pluginmain"
)

// version must be the one the SDK asks for (pulumi_kubernetes 4.34.2): the
// engine records it in the state and in provider references.
const version = "4.34.2"

func main() {
	args := pluginmain.ParseArgs(os.Args[1:])
	if args.Flags["version"] == "true" {
		// `-version` lets tooling check the pinned version without starting a server.
		fmt.Println(version)
		return
	}
	p := newProvider()
	err := pluginmain.Serve(context.Background(), args.EngineAddress,
		func(ctx context.Context, s *grpc.Server) error {
			// Shutting down cancels operations in flight, like Cancel does.
			context.AfterFunc(ctx, p.stop)
			pulumirpc.RegisterResourceProviderServer(s, p)
			return nil
		})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
}

type provider struct {
	pulumirpc.UnimplementedResourceProviderServer

	// root is cancelled by the engine's Cancel call; every operation derives
	// from it so that waits end promptly.
	root context.Context
	stop context.CancelFunc

	mu            sync.Mutex
	cfg           providerConfig
	acceptSecrets bool
	cl            *cluster // built on first use, from cfg
}

func newProvider() *provider {
	root, stop := context.WithCancel(context.Background())
	return &provider{root: root, stop: stop, cfg: providerConfig{deleteTimeout: defaultDeleteTimeout}}
}

// opContext ends when either the caller gives up or the provider is cancelled.
func (p *provider) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.root, cancel)
	return ctx, func() { stop(); cancel() }
}

// client returns the cluster connection, creating it on first use. Building it
// reads the kubeconfig only; nothing goes over the network yet.
func (p *provider) client() (*cluster, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.unknown {
		return nil, fmt.Errorf("the kubernetes provider configuration is not known yet (it depends on " +
			"outputs of other resources); it can only be used once they exist")
	}
	if p.cl == nil {
		cl, err := connect(p.cfg)
		if err != nil {
			return nil, err
		}
		p.cl = cl
	}
	return p.cl, nil
}

// defaultNamespace is where namespaced objects without one go, for Diff, or
// "" when that is not known yet. A kubeconfig that cannot be read falls back to
// the plain default; using it will fail later with a clearer error.
func (p *provider) defaultNamespace() string {
	p.mu.Lock()
	cfg := p.cfg
	p.mu.Unlock()
	if cfg.unknown {
		return ""
	}
	if cl, err := p.client(); err == nil {
		return cl.defaultNamespace
	}
	if cfg.namespace != "" {
		return cfg.namespace
	}
	return "default"
}

var inputOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipInternalKeys: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, inputOpts)
}

func (p *provider) marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	p.mu.Lock()
	keep := p.acceptSecrets
	p.mu.Unlock()
	return plugin.MarshalProperties(m, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: keep})
}

// ---- plugin and provider configuration ----

func (p *provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (p *provider) Handshake(context.Context, *pulumirpc.ProviderHandshakeRequest) (
	*pulumirpc.ProviderHandshakeResponse, error,
) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

// GetSchema returns a schema with no types: this provider is generic, and the
// engine only needs schemas for code generation and conversions.
func (p *provider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"kubernetes","version":"` + version + `"}`}, nil
}

func (p *provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *provider) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	oldStruct := req.GetOldInputs()
	if oldStruct == nil {
		oldStruct = req.GetOlds()
	}
	olds, err := unmarshal(oldStruct)
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	keys := configDiff(olds, news)
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, Diffs: keys}
	if len(keys) > 0 {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return resp, nil
}

func (p *provider) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	var args resource.PropertyMap
	if req.GetArgs() != nil {
		var err error
		if args, err = unmarshal(req.GetArgs()); err != nil {
			return nil, err
		}
	}
	cfg, err := parseConfig(req.GetVariables(), args)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.cfg, p.cl, p.acceptSecrets = cfg, nil, req.GetAcceptSecrets()
	p.mu.Unlock()
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

func (p *provider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.stop()
	return &emptypb.Empty{}, nil
}

// ---- resources ----

func (p *provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if isRelease(req.GetUrn()) {
		return p.checkRelease(req)
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	name := req.GetName()
	if name == "" {
		name = resource.URN(req.GetUrn()).Name()
	}
	checked, failures := checkObject(name, olds, news, req.GetRandomSeed())
	// Inputs go back to the engine as they came: secrets stay secrets.
	inputs, err := plugin.MarshalProperties(checked, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true})
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

func (p *provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if isRelease(req.GetUrn()) {
		return p.diffRelease(req)
	}
	oldInputs, oldLive, news, err := diffInputs(req)
	if err != nil {
		return nil, err
	}
	d := diffObject(oldInputs, oldLive, news, p.defaultNamespace())
	resp := &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_NONE,
		Diffs:               d.keys,
		Replaces:            d.replaces,
		DeleteBeforeReplace: true, // the replacement has the same identity
		DetailedDiff:        d.detailed,
		HasDetailedDiff:     true,
	}
	if d.changed {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return resp, nil
}

func (p *provider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if isRelease(req.GetUrn()) {
		return p.createRelease(ctx, req)
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		// Previews never touch the cluster; the outputs are the inputs.
		outs, err := p.marshal(props)
		return &pulumirpc.CreateResponse{Properties: outs}, err
	}
	live, id, secrets, err := p.applyInputs(ctx, props, "")
	if err != nil {
		return nil, err
	}
	outs, err := p.marshal(toOutputs(live, secrets))
	return &pulumirpc.CreateResponse{Id: id, Properties: outs}, err
}

func (p *provider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if isRelease(req.GetUrn()) {
		return p.updateRelease(ctx, req)
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		outs, err := p.marshal(news)
		return &pulumirpc.UpdateResponse{Properties: outs}, err
	}
	live, _, secrets, err := p.applyInputs(ctx, news, req.GetId())
	if err != nil {
		return nil, err
	}
	outs, err := p.marshal(toOutputs(live, secrets))
	return &pulumirpc.UpdateResponse{Properties: outs}, err
}

// applyInputs applies the object; currentID is empty for a creation and the
// object's ID for an update.
func (p *provider) applyInputs(ctx context.Context, props resource.PropertyMap, currentID string) (
	map[string]any, string, []resource.PropertyPath, error,
) {
	obj, secrets, unknowns := toObject(props)
	if unknowns {
		return nil, "", nil, fmt.Errorf("cannot apply an object with unknown values outside a preview")
	}
	cl, err := p.client()
	if err != nil {
		return nil, "", nil, err
	}
	ctx, cancel := p.opContext(ctx)
	defer cancel()
	live, id, err := cl.apply(ctx, obj, currentID)
	return live, id, secrets, err
}

func (p *provider) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if isRelease(req.GetUrn()) {
		return p.readRelease(ctx, req)
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	inputs, err := unmarshal(req.GetInputs())
	if err != nil {
		return nil, err
	}
	apiVersion, kind := stringOr(props, "apiVersion"), stringOr(props, "kind")
	if apiVersion == "" || kind == "" {
		apiVersion, kind = stringOr(inputs, "apiVersion"), stringOr(inputs, "kind")
	}
	if apiVersion == "" || kind == "" {
		// A bare import has only the type token; it is not parsed here.
		return nil, fmt.Errorf("cannot read %s: apiVersion and kind are unknown (pass them as inputs)", req.GetId())
	}
	cl, err := p.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.opContext(ctx)
	defer cancel()
	live, err := cl.get(ctx, apiVersion, kind, req.GetId())
	if err != nil {
		return nil, err
	}
	if live == nil {
		return &pulumirpc.ReadResponse{}, nil // gone: the engine drops it from the state
	}

	// Outputs stay secret where the inputs or the previous outputs were.
	_, secrets, _ := toObject(inputs)
	_, oldSecrets, _ := toObject(props)
	outs, err := p.marshal(toOutputs(live, append(secrets, oldSecrets...)))
	if err != nil {
		return nil, err
	}
	inStruct := req.GetInputs()
	if len(inputs) == 0 {
		if inStruct, err = p.marshal(toOutputs(importInputs(live), oldSecrets)); err != nil {
			return nil, err
		}
	}
	u := unstructured.Unstructured{Object: live}
	return &pulumirpc.ReadResponse{Id: formatID(u.GetNamespace(), u.GetName()), Properties: outs, Inputs: inStruct}, nil
}

func (p *provider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if isRelease(req.GetUrn()) {
		return p.deleteRelease(ctx, req)
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	apiVersion, kind := stringOr(props, "apiVersion"), stringOr(props, "kind")
	if apiVersion == "" || kind == "" {
		old, err := unmarshal(req.GetOldInputs())
		if err != nil {
			return nil, err
		}
		apiVersion, kind = stringOr(old, "apiVersion"), stringOr(old, "kind")
	}
	cl, err := p.client()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	timeout := p.cfg.deleteTimeout
	p.mu.Unlock()
	if req.GetTimeout() > 0 { // customTimeouts.delete on the resource wins
		timeout = time.Duration(req.GetTimeout() * float64(time.Second))
	}
	ctx, cancel := p.opContext(ctx)
	defer cancel()
	if err := cl.remove(ctx, apiVersion, kind, req.GetId(), timeout); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
