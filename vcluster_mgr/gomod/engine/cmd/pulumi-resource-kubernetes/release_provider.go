package main

// The provider operations of kubernetes:helm.sh/v3:Release; main.go routes the
// type token here. The ID of a release is "namespace/name".

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

func isRelease(urn string) bool { return string(resource.URN(urn).Type()) == releaseType }

func (p *provider) checkRelease(req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
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
	checked, failures := checkRelease(name, olds, news, req.GetRandomSeed())
	if s, r := parseRelease(checked); len(failures) == 0 && s.lint && !r.unknown {
		if src, _ := classifyChart(s.chart, s.repo); src == chartLocal {
			if vals, _, unknown, err := releaseValues(checked, s.allowNullValues); err == nil && !unknown {
				ns := s.namespace
				if ns == "" {
					ns = "default"
				}
				for _, msg := range lintChart(s.chart, ns, vals) {
					failures = append(failures, &pulumirpc.CheckFailure{Property: "chart", Reason: "helm lint: " + msg})
				}
			}
		}
	}
	inputs, err := plugin.MarshalProperties(checked, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true})
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

func (p *provider) diffRelease(req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	oldInputs, oldLive, news, err := diffInputs(req)
	if err != nil {
		return nil, err
	}
	d := diffRelease(oldInputs, oldLive, news, p.defaultNamespace())
	resp := &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_NONE,
		Diffs:               d.keys,
		Replaces:            d.replaces,
		DeleteBeforeReplace: true, // a release name is unique in its namespace
		DetailedDiff:        d.detailed,
		HasDetailedDiff:     true,
	}
	if d.changed {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return resp, nil
}

// releaseRequest turns checked inputs into what Helm is given. namespace is
// where the release lives when the inputs do not say.
func releaseRequest(props resource.PropertyMap, namespace string) (releaseSpec, map[string]any, error) {
	s, r := parseRelease(props)
	if r.unknown || props.ContainsUnknowns() {
		return s, nil, errors.New("cannot install or upgrade a Helm release with unknown values outside a preview")
	}
	if len(r.failures) > 0 {
		var msgs []string
		for _, f := range r.failures {
			msgs = append(msgs, f.Reason)
		}
		return s, nil, fmt.Errorf("invalid Helm release inputs: %s", strings.Join(msgs, "; "))
	}
	if s.name == "" {
		return s, nil, errors.New("the Helm release has no name (Check should have set one)")
	}
	if s.namespace == "" {
		s.namespace = namespace
	}
	vals, _, _, err := releaseValues(props, s.allowNullValues)
	return s, vals, err
}

// previewOutputs are the outputs of a preview: the inputs, and what only the
// cluster can tell unknown.
func previewOutputs(props resource.PropertyMap) resource.PropertyMap {
	outs := stripInternal(props).Copy()
	outs["status"] = resource.MakeComputed(resource.NewProperty(""))
	outs["resourceNames"] = resource.MakeComputed(resource.NewProperty(""))
	return outs
}

func (p *provider) createRelease(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		outs, err := p.marshal(previewOutputs(props))
		return &pulumirpc.CreateResponse{Properties: outs}, err
	}
	cl, err := p.client()
	if err != nil {
		return nil, err
	}
	s, vals, err := releaseRequest(props, cl.defaultNamespace)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.opContext(ctx)
	defer cancel()
	rel, err := cl.installRelease(ctx, s, vals)
	var initErr *releaseInitError
	if errors.As(err, &initErr) && rel != nil {
		id := formatID(rel.Namespace, rel.Name)
		outs, merr := p.marshal(releaseOutputs(props, infoOf(rel)))
		if merr != nil {
			return nil, err
		}
		return nil, initFailed(id, outs, err)
	}
	if err != nil {
		return nil, err
	}
	outs, err := p.marshal(releaseOutputs(props, infoOf(rel)))
	return &pulumirpc.CreateResponse{Id: formatID(rel.Namespace, rel.Name), Properties: outs}, err
}

// initFailed reports a resource that exists but failed to initialise: the
// engine records it, so that a destroy or the next update deals with it.
func initFailed(id string, outs *structpb.Struct, err error) error {
	st, derr := status.New(codes.Unknown, err.Error()).WithDetails(&pulumirpc.ErrorResourceInitFailed{
		Id: id, Properties: outs, Reasons: []string{err.Error()},
	})
	if derr != nil {
		return err
	}
	return st.Err()
}

func (p *provider) updateRelease(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		outs, err := p.marshal(previewOutputs(news))
		return &pulumirpc.UpdateResponse{Properties: outs}, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	oldInputs := olds
	if req.GetOldInputs() != nil {
		if oldInputs, err = unmarshal(req.GetOldInputs()); err != nil {
			return nil, err
		}
	}
	ns, name, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	cl, err := p.client()
	if err != nil {
		return nil, err
	}
	s, vals, err := releaseRequest(news, ns) // an omitted namespace: where it is
	if err != nil {
		return nil, err
	}
	if s.name != name || s.namespace != ns {
		return nil, fmt.Errorf("updating Helm release %s would address %s instead; this needs a replacement",
			req.GetId(), formatID(s.namespace, s.name))
	}
	ctx, cancel := p.opContext(ctx)
	defer cancel()
	d := diffRelease(oldInputs, olds, news, cl.defaultNamespace)
	if !needsUpgrade(d) {
		// Only how operations run changed: no new revision, the state follows.
		rel, err := cl.getRelease(ns, name)
		if err != nil {
			return nil, err
		}
		if rel != nil {
			outs, err := p.marshal(releaseOutputs(news, infoOf(rel)))
			return &pulumirpc.UpdateResponse{Properties: outs}, err
		}
	}
	rel, err := cl.upgradeRelease(ctx, s, vals)
	if err != nil {
		return nil, err
	}
	outs, err := p.marshal(releaseOutputs(news, infoOf(rel)))
	return &pulumirpc.UpdateResponse{Properties: outs}, err
}

func (p *provider) readRelease(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	ns, name, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	inputs, err := unmarshal(req.GetInputs())
	if err != nil {
		return nil, err
	}
	cl, err := p.client()
	if err != nil {
		return nil, err
	}
	rel, err := cl.getRelease(ns, name)
	if err != nil {
		return nil, err
	}
	if rel == nil {
		return &pulumirpc.ReadResponse{}, nil // gone: the engine drops it from the state
	}
	info := infoOf(rel)
	inStruct := req.GetInputs()
	if len(inputs) == 0 {
		inputs = importedInputs(info)
		if inStruct, err = p.marshal(inputs); err != nil {
			return nil, err
		}
	}
	base := props // the previous outputs keep their secrets; an import has only inputs
	if len(base) == 0 {
		base = inputs
	}
	outs, err := p.marshal(releaseOutputs(base, info))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: formatID(rel.Namespace, rel.Name), Properties: outs, Inputs: inStruct}, nil
}

func (p *provider) deleteRelease(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	ns, name, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	s, _ := parseRelease(props)
	cl, err := p.client()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	timeout := p.cfg.deleteTimeout
	p.mu.Unlock()
	if _, ok := props["timeout"]; ok && s.timeout > 0 {
		timeout = s.timeout
	}
	if req.GetTimeout() > 0 { // customTimeouts.delete on the resource wins
		timeout = time.Duration(req.GetTimeout() * float64(time.Second))
	}
	ctx, cancel := p.opContext(ctx)
	defer cancel()
	if err := cl.uninstallRelease(ctx, ns, name, s.disableWebhooks, timeout); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
