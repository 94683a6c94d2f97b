package main

// Everything that talks to the Kubernetes API server.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// fieldManager owns the fields we apply; applying again with the same manager
// removes fields that disappeared from the inputs.
const fieldManager = "vcluster-mgr"

// discoveryRetries bounds the discovery refreshes for an unknown kind (about
// one per second).
const discoveryRetries = 5

type cluster struct {
	host             string // API server URL, quoted in every error
	defaultNamespace string
	dynamic          dynamic.Interface
	mapper           *restmapper.DeferredDiscoveryRESTMapper

	// For Helm (helm.go): the same connection, and a discovery cache of its
	// own (Helm invalidates it on every action to read the capabilities).
	restConfig   *rest.Config
	clientConfig clientcmd.ClientConfig
	helmDisc     discovery.CachedDiscoveryInterface

	// refreshMu serialises discovery refreshes: several resources of a new
	// CRD kind may fail to map at the same time.
	refreshMu sync.Mutex
}

// connect builds clients from the provider configuration. It only reads the
// kubeconfig; discovery is deferred to the first mapping.
func connect(cfg providerConfig) (*cluster, error) {
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.context}
	var cc clientcmd.ClientConfig
	switch {
	case cfg.kubeconfig == "":
		cc = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), overrides)
	case cfg.kubeconfigIsContent:
		raw, err := clientcmd.Load([]byte(cfg.kubeconfig))
		if err != nil {
			return nil, fmt.Errorf("the kubeconfig given in the provider configuration is invalid: %w", err)
		}
		cc = clientcmd.NewNonInteractiveClientConfig(*raw, cfg.context, overrides, nil)
	default:
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: cfg.kubeconfig}
		cc = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	}
	restConfig, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot build a Kubernetes client from the kubeconfig: %w", err)
	}
	restConfig.UserAgent = "pulumi-resource-kubernetes (vcluster-mgr)"
	// The client-side limiter defaults (5 qps) would make stacks with many
	// objects crawl; the API server's own flow control still applies.
	restConfig.QPS, restConfig.Burst = 50, 100
	restConfig.WarningHandler = rest.NoWarnings{}

	ns := cfg.namespace
	if ns == "" {
		if ctxNS, _, err := cc.Namespace(); err == nil {
			ns = ctxNS
		}
	}
	if ns == "" {
		ns = "default"
	}

	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	helmDisc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	return &cluster{
		host:             restConfig.Host,
		defaultNamespace: ns,
		dynamic:          dyn,
		mapper:           restmapper.NewDeferredDiscoveryRESTMapperWithContext(memory.NewMemCacheClientWithContext(disc)),
		restConfig:       restConfig,
		clientConfig:     cc,
		helmDisc:         memory.NewMemCacheClient(helmDisc),
	}, nil
}

// target is one object on the server.
type target struct {
	res       dynamic.ResourceInterface
	gvk       schema.GroupVersionKind
	namespace string // empty for cluster-scoped kinds
	name      string
}

func (t target) String() string {
	return fmt.Sprintf("%s %s", t.gvk.Kind, formatID(t.namespace, t.name))
}

// resolve maps apiVersion/kind to an API resource. Discovery is cached for the
// life of the provider; it is refreshed when a kind is unknown, because its CRD
// may have been created earlier in the same update. A new CRD is served only
// once it is established, a moment after its creation, hence a few short
// retries before giving up.
func (c *cluster) resolve(ctx context.Context, apiVersion, kind, namespace, name string) (target, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return target{}, fmt.Errorf("invalid apiVersion %q: %w", apiVersion, err)
	}
	gvk := gv.WithKind(kind)
	mapping, err := c.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	for attempt := 0; meta.IsNoMatchError(err) && attempt < discoveryRetries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return target{}, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		c.refreshMu.Lock()
		c.mapper.ResetWithContext(ctx)
		mapping, err = c.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
		c.refreshMu.Unlock()
	}
	if err != nil {
		return target{}, fmt.Errorf("cannot look up the API resource for %s %s on %s: %w", apiVersion, kind, c.host, err)
	}
	t := target{gvk: gvk, name: name}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		t.namespace = namespace
		if t.namespace == "" {
			t.namespace = c.defaultNamespace
		}
		t.res = c.dynamic.Resource(mapping.Resource).Namespace(t.namespace)
	} else {
		t.res = c.dynamic.Resource(mapping.Resource)
	}
	return t, nil
}

// targetOf resolves the object described by a plain object.
func (c *cluster) targetOf(ctx context.Context, obj map[string]any) (target, error) {
	u := unstructured.Unstructured{Object: obj}
	return c.resolve(ctx, u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
}

func (c *cluster) wrap(t target, verb string, err error) error {
	return fmt.Errorf("%s %s on %s: %w", verb, t, c.host, err)
}

// apply creates (currentID empty) or updates the object with server-side apply
// and returns the live object and its ID. A creation refuses an object that is
// already there: silently adopting it would let a later destroy delete
// something this stack never created. An update refuses to address another
// object than the one in the state: that would leave the old one behind.
func (c *cluster) apply(ctx context.Context, obj map[string]any, currentID string) (map[string]any, string, error) {
	t, err := c.targetOf(ctx, obj)
	if err != nil {
		return nil, "", err
	}
	id := formatID(t.namespace, t.name)
	if currentID != "" && id != currentID {
		return nil, "", fmt.Errorf("%s: updating %s would apply to %s instead; this needs a replacement "+
			"(e.g. set metadata.namespace explicitly, or use `pulumi up --target-replace`)", t.gvk.Kind, currentID, id)
	}
	mustNotExist := currentID == ""
	u := &unstructured.Unstructured{Object: obj}
	// The namespace is where the object lives, not part of what we own; cluster-
	// scoped kinds reject it.
	u.SetNamespace(t.namespace)

	if mustNotExist {
		existing, err := t.res.Get(ctx, t.name, metav1.GetOptions{})
		switch {
		case err == nil && appliedByUs(existing) && sameOwner(existing, u):
			// Our own field manager applied it, for the same owning stack: a run
			// interrupted between the apply and the state write (a crash, a
			// kill). Taking it over is the only way a re-run converges, and it is
			// ours to take.
		case err == nil:
			return nil, "", fmt.Errorf("%s already exists on %s; delete it or import it into the stack first", t, c.host)
		case !apierrors.IsNotFound(err):
			return nil, "", c.wrap(t, "reading", err)
		}
	}

	body, err := json.Marshal(u.Object)
	if err != nil {
		return nil, "", err
	}
	force := true
	live, err := t.res.Patch(ctx, t.name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: fieldManager, Force: &force})
	if err != nil {
		return nil, "", c.wrap(t, "applying", err)
	}
	return cleanLive(live), id, nil
}

// appliedByUs tells whether our field manager applied (part of) the object.
func appliedByUs(u *unstructured.Unstructured) bool {
	for _, m := range u.GetManagedFields() {
		if m.Manager == fieldManager && m.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// ownerAnnotation names the stack that owns an object (vcluster-mgr puts it on
// namespaces); objects of one stack are never adopted by another.
const ownerAnnotation = "vcluster-mgr.dev/stack"

// sameOwner is false when the desired object names an owning stack and the live
// one names another (or none).
func sameOwner(live, desired *unstructured.Unstructured) bool {
	want, ok := desired.GetAnnotations()[ownerAnnotation]
	if !ok {
		return true
	}
	return live.GetAnnotations()[ownerAnnotation] == want
}

// get returns the live object, or nil when it does not exist.
func (c *cluster) get(ctx context.Context, apiVersion, kind, id string) (map[string]any, error) {
	ns, name, err := parseID(id)
	if err != nil {
		return nil, err
	}
	t, err := c.resolve(ctx, apiVersion, kind, ns, name)
	if err != nil {
		return nil, err
	}
	live, err := t.res.Get(ctx, t.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.wrap(t, "reading", err)
	}
	return cleanLive(live), nil
}

// remove deletes the object and waits until it is really gone: a namespace,
// or an object with finalizers, lingers until controllers finish, and a
// replacement created meanwhile would fail or be deleted with it.
func (c *cluster) remove(ctx context.Context, apiVersion, kind, id string, timeout time.Duration) error {
	ns, name, err := parseID(id)
	if err != nil {
		return err
	}
	t, err := c.resolve(ctx, apiVersion, kind, ns, name)
	if meta.IsNoMatchError(errors.Unwrap(err)) {
		return nil // the kind itself is gone (CRD deleted), so is the object
	}
	if err != nil {
		return err
	}

	current, err := t.res.Get(ctx, t.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return c.wrap(t, "reading", err)
	}
	uid := current.GetUID()

	background := metav1.DeletePropagationBackground
	err = t.res.Delete(ctx, t.name, metav1.DeleteOptions{
		PropagationPolicy: &background,
		// Never delete a newer object that happens to have the same name.
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return c.wrap(t, "deleting", err)
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 250 * time.Millisecond
	last := current
	for {
		obj, err := t.res.Get(ctx, t.name, metav1.GetOptions{})
		if err == nil {
			last = obj
		}
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err == nil && obj.GetUID() != uid:
			return nil // gone, and someone already created a new one
		case err != nil && ctx.Err() == nil:
			return c.wrap(t, "waiting for the deletion of", err)
		}
		select {
		case <-ctx.Done():
			detail := ""
			if len(last.GetFinalizers()) > 0 {
				detail = fmt.Sprintf(" (finalizers still pending: %v)", last.GetFinalizers())
			}
			return fmt.Errorf("%s on %s was not gone after %s%s: %w", t, c.host, timeout, detail, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*3/2, 5*time.Second)
	}
}

// cleanLive drops managedFields: bookkeeping of the API server, large and
// changing on every apply, useless as Pulumi outputs.
func cleanLive(u *unstructured.Unstructured) map[string]any {
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	return u.Object
}
