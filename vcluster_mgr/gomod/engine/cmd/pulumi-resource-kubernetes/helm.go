package main

// Helm releases through the Helm Go SDK, over the provider's own connection.
// Release records are stored by Helm's default driver (Secrets of type
// helm.sh/release.v1 in the release's namespace). The network is used for the
// API server only, and for a chart repository or OCI registry only when a chart
// (or, with dependencyUpdate, a dependency) is to be fetched from one.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/downloader"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/postrender"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// helmGetter hands Helm the provider's connection (kubeconfig, context,
// credentials) with the release's namespace as the default one.
type helmGetter struct {
	cl        *cluster
	namespace string
}

func (g helmGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.cl.restConfig), nil
}

func (g helmGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.cl.helmDisc, nil
}

func (g helmGetter) ToRESTMapper() (meta.RESTMapper, error) {
	m := restmapper.NewDeferredDiscoveryRESTMapper(g.cl.helmDisc)
	return restmapper.NewShortcutExpander(m, g.cl.helmDisc, func(string) {}), nil
}

func (g helmGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return namespacedClientConfig{inner: g.cl.clientConfig, namespace: g.namespace}
}

// namespacedClientConfig is the kubeconfig with the release's namespace as
// the default one.
type namespacedClientConfig struct {
	inner     clientcmd.ClientConfig
	namespace string
}

func (c namespacedClientConfig) RawConfig() (clientcmdapi.Config, error) { return c.inner.RawConfig() }
func (c namespacedClientConfig) ClientConfig() (*rest.Config, error)     { return c.inner.ClientConfig() }
func (c namespacedClientConfig) Namespace() (string, bool, error)        { return c.namespace, true, nil }
func (c namespacedClientConfig) ConfigAccess() clientcmd.ConfigAccess    { return c.inner.ConfigAccess() }

// helmConfig prepares Helm's action configuration for one namespace. It reads
// nothing yet.
func (c *cluster) helmConfig(namespace string) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	if err := cfg.Init(helmGetter{cl: c, namespace: namespace}, namespace, "secret", func(string, ...any) {}); err != nil {
		return nil, err
	}
	if kc, ok := cfg.KubeClient.(*kube.Client); ok {
		kc.Namespace = namespace
	}
	return cfg, nil
}

// lastRelease returns the newest revision of a release, or nil when there is
// none (never installed, or uninstalled).
func lastRelease(cfg *action.Configuration, name string) (*release.Release, error) {
	h, err := cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var last *release.Release
	for _, r := range h {
		if last == nil || r.Version > last.Version {
			last = r
		}
	}
	return last, nil
}

func ownedByUs(r *release.Release) bool { return r.Labels[managedLabel] == managedValue }

// unlockPending marks a release left pending by an interrupted operation as
// failed, so that the next upgrade can proceed (Helm refuses to upgrade a
// pending release). Only for releases of this provider: the stack's lock makes
// us the only writer.
func unlockPending(cfg *action.Configuration, r *release.Release) error {
	if r == nil || !r.Info.Status.IsPending() {
		return nil
	}
	r.SetStatus(release.StatusFailed, fmt.Sprintf("%s was interrupted; marked failed by %s to retry", r.Info.Status, managedValue))
	return cfg.Releases.Update(r)
}

func (c *cluster) releaseError(verb string, s releaseSpec, err error) error {
	return fmt.Errorf("%s Helm release %s on %s: %w", verb, formatID(s.namespace, s.name), c.host, err)
}

// getRelease returns the release's newest revision, or nil when it is gone.
func (c *cluster) getRelease(namespace, name string) (*release.Release, error) {
	cfg, err := c.helmConfig(namespace)
	if err != nil {
		return nil, err
	}
	r, err := lastRelease(cfg, name)
	if err != nil {
		return nil, fmt.Errorf("reading Helm release %s on %s: %w", formatID(namespace, name), c.host, err)
	}
	if r == nil || r.Info == nil || r.Info.Status == release.StatusUninstalled {
		return nil, nil
	}
	return r, nil
}

// installRelease is `helm install`. A release of the same name that this
// provider installed (an earlier run was interrupted before Pulumi recorded it)
// is upgraded instead; anyone else's is an error.
func (c *cluster) installRelease(ctx context.Context, s releaseSpec, vals map[string]any) (*release.Release, error) {
	cfg, err := c.helmConfig(s.namespace)
	if err != nil {
		return nil, err
	}
	prev, err := lastRelease(cfg, s.name)
	if err != nil {
		return nil, c.releaseError("reading", s, err)
	}
	replace := s.replace
	if prev != nil {
		switch {
		case prev.Info.Status == release.StatusUninstalled:
			replace = true // uninstalled with its history kept: the name is free
		case !ownedByUs(prev):
			return nil, fmt.Errorf("Helm release %s already exists on %s (status %s) and was not installed by this "+
				"provider; uninstall it, choose another name, or import it into the stack first",
				formatID(s.namespace, s.name), c.host, prev.Info.Status)
		default:
			return c.upgradeWith(ctx, cfg, s, vals)
		}
	}

	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = s.name, s.namespace
	in.CreateNamespace = s.createNamespace
	in.Wait, in.WaitForJobs, in.Timeout = s.wait(), s.wait() && s.waitForJobs, s.timeout
	in.Atomic = s.atomic && s.wait() // without waiting, atomic is handled below
	in.SkipCRDs, in.DisableHooks, in.DisableOpenAPIValidation = s.skipCrds, s.disableWebhooks, s.disableOpenapiValidation
	in.Replace, in.Description, in.Devel, in.SubNotes = replace, s.description, s.devel, s.renderSubchartNotes
	in.TakeOwnership = s.takeOwnership
	in.Labels = map[string]string{managedLabel: managedValue}
	if in.PostRenderer, err = postRenderer(s); err != nil {
		return nil, err
	}
	ch, err := c.loadChart(s, &in.ChartPathOptions, cfg, in.SetRegistryClient)
	if err != nil {
		return nil, err
	}
	rel, err := in.RunWithContext(ctx, ch, vals)
	if err != nil {
		if s.atomic && !s.wait() {
			if uerr := c.uninstallRelease(ctx, s.namespace, s.name, s.disableWebhooks, s.timeout); uerr != nil {
				return nil, c.releaseError("installing", s, fmt.Errorf("%w; uninstalling it again (atomic) failed too: %v", err, uerr))
			}
			return nil, c.releaseError("installing", s, fmt.Errorf("%w (uninstalled again: atomic is set)", err))
		}
		if rel != nil && rel.Info != nil && rel.Info.Status == release.StatusFailed {
			return rel, &releaseInitError{err: c.releaseError("installing", s, err)}
		}
		return nil, c.releaseError("installing", s, err)
	}
	return rel, nil
}

// releaseInitError is an install that failed after Helm recorded the release:
// Pulumi keeps the resource (so that a destroy uninstalls it, and the next
// update upgrades it) and reports the error.
type releaseInitError struct{ err error }

func (e *releaseInitError) Error() string { return e.err.Error() }
func (e *releaseInitError) Unwrap() error { return e.err }

// upgradeRelease is `helm upgrade`, keeping at most maxHistory revisions.
func (c *cluster) upgradeRelease(ctx context.Context, s releaseSpec, vals map[string]any) (*release.Release, error) {
	cfg, err := c.helmConfig(s.namespace)
	if err != nil {
		return nil, err
	}
	return c.upgradeWith(ctx, cfg, s, vals)
}

func (c *cluster) upgradeWith(ctx context.Context, cfg *action.Configuration, s releaseSpec, vals map[string]any) (
	*release.Release, error,
) {
	prev, err := lastRelease(cfg, s.name)
	if err != nil {
		return nil, c.releaseError("reading", s, err)
	}
	if prev == nil || prev.Info.Status == release.StatusUninstalled {
		return nil, c.releaseError("upgrading", s, errors.New("the release does not exist (any more); "+
			"run `pulumi refresh` so that Pulumi installs it again"))
	}
	if ownedByUs(prev) {
		if err := unlockPending(cfg, prev); err != nil {
			return nil, c.releaseError("unlocking", s, err)
		}
	}

	up := action.NewUpgrade(cfg)
	up.Namespace, up.MaxHistory = s.namespace, s.maxHistory
	up.Wait, up.WaitForJobs, up.Timeout = s.wait(), s.wait() && s.waitForJobs, s.timeout
	up.Atomic = s.atomic && s.wait()
	up.CleanupOnFail, up.Force, up.Recreate = s.cleanupOnFail, s.forceUpdate, s.recreatePods
	// The values are the inputs, as declared: without ResetValues, Helm would
	// keep the previous values when the new ones are empty.
	up.ReuseValues, up.ResetValues = s.reuseValues && !s.resetValues, !s.reuseValues || s.resetValues
	up.SkipCRDs, up.DisableHooks, up.DisableOpenAPIValidation = s.skipCrds, s.disableWebhooks, s.disableOpenapiValidation
	up.Description, up.Devel, up.SubNotes, up.TakeOwnership = s.description, s.devel, s.renderSubchartNotes, s.takeOwnership
	up.Labels = map[string]string{managedLabel: managedValue}
	if up.PostRenderer, err = postRenderer(s); err != nil {
		return nil, err
	}
	ch, err := c.loadChart(s, &up.ChartPathOptions, cfg, up.SetRegistryClient)
	if err != nil {
		return nil, err
	}
	rel, err := up.RunWithContext(ctx, s.name, ch, vals)
	if err != nil {
		if s.atomic && !s.wait() {
			if rerr := rollBack(cfg, s); rerr != nil {
				return nil, c.releaseError("upgrading", s, fmt.Errorf("%w; rolling back (atomic) failed too: %v", err, rerr))
			}
			return nil, c.releaseError("upgrading", s, fmt.Errorf("%w (rolled back: atomic is set)", err))
		}
		return nil, c.releaseError("upgrading", s, err)
	}
	return rel, nil
}

// rollBack returns to the newest successful revision, without waiting.
func rollBack(cfg *action.Configuration, s releaseSpec) error {
	h, err := cfg.Releases.History(s.name)
	if err != nil {
		return err
	}
	target := 0
	for _, r := range h {
		if (r.Info.Status == release.StatusDeployed || r.Info.Status == release.StatusSuperseded) && r.Version > target {
			target = r.Version
		}
	}
	if target == 0 {
		return errors.New("there is no earlier successful revision")
	}
	rb := action.NewRollback(cfg)
	rb.Version, rb.Timeout, rb.MaxHistory = target, s.timeout, s.maxHistory
	rb.DisableHooks, rb.CleanupOnFail, rb.Force = s.disableWebhooks, s.cleanupOnFail, s.forceUpdate
	return rb.Run(s.name)
}

func postRenderer(s releaseSpec) (postrender.PostRenderer, error) {
	if s.postrender == "" {
		return nil, nil
	}
	fields := strings.Fields(s.postrender)
	pr, err := postrender.NewExec(fields[0], fields[1:]...)
	if err != nil {
		return nil, fmt.Errorf("postrender %q: %w", s.postrender, err)
	}
	return pr, nil
}

// uninstallRelease is `helm uninstall`, then waits until the release's objects
// are really gone (polling, which needs no nodes: nothing waits for pods to be
// ready or for kubelets). Objects kept by helm.sh/resource-policy stay.
func (c *cluster) uninstallRelease(ctx context.Context, namespace, name string, disableHooks bool, timeout time.Duration) error {
	cfg, err := c.helmConfig(namespace)
	if err != nil {
		return err
	}
	rel, err := lastRelease(cfg, name)
	if err != nil {
		return fmt.Errorf("reading Helm release %s on %s: %w", formatID(namespace, name), c.host, err)
	}
	if rel == nil {
		return nil
	}

	// Remember which objects to wait for, by UID: one created again under the
	// same name meanwhile is not ours to wait for.
	type pending struct {
		t   target
		uid types.UID
	}
	var waits []pending
	for _, o := range manifestObjects(rel.Manifest) {
		if o.keep {
			continue
		}
		ns := o.namespace
		if ns == "" {
			ns = namespace
		}
		t, err := c.resolve(ctx, o.apiVersion, o.kind, ns, o.name)
		if err != nil {
			continue // a kind no longer served: nothing of it to wait for
		}
		if live, err := t.res.Get(ctx, t.name, metav1.GetOptions{}); err == nil {
			waits = append(waits, pending{t, live.GetUID()})
		}
	}

	un := action.NewUninstall(cfg)
	un.DisableHooks, un.Timeout, un.DeletionPropagation = disableHooks, timeout, "background"
	if _, err := un.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstalling Helm release %s on %s: %w", formatID(namespace, name), c.host, err)
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 250 * time.Millisecond
	for len(waits) > 0 {
		w := waits[0]
		obj, err := w.t.res.Get(ctx, w.t.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || (err == nil && obj.GetUID() != w.uid):
			waits = waits[1:]
			continue
		case err != nil && ctx.Err() == nil:
			return c.wrap(w.t, "waiting for the deletion of", err)
		}
		select {
		case <-ctx.Done():
			detail := ""
			if obj != nil && len(obj.GetFinalizers()) > 0 {
				detail = fmt.Sprintf(" (finalizers still pending: %v)", obj.GetFinalizers())
			}
			return fmt.Errorf("Helm release %s was uninstalled, but %s on %s was not gone after %s%s: %w",
				formatID(namespace, name), w.t, c.host, timeout, detail, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*3/2, 2*time.Second)
	}
	return nil
}

// ---- charts ----

// loadChart finds the chart (a local path, a repository, an OCI registry),
// downloading it when it is remote, and loads it. setRegistry gives the
// registry client to the action, which keeps it in cpo.
func (c *cluster) loadChart(s releaseSpec, cpo *action.ChartPathOptions, cfg *action.Configuration,
	setRegistry func(*registry.Client),
) (*chart.Chart, error) {
	settings := cli.New()
	src, ref := classifyChart(s.chart, s.repo)
	if src == chartMissing {
		return nil, fmt.Errorf("chart %q is not found (not a local path, nor an oci:// reference; for a "+
			"chart of a repository set repositoryOpts.repo)", s.chart)
	}
	cpo.Version, cpo.Verify, cpo.Keyring = s.version, s.verify, s.keyring
	if cpo.Version == "" && s.devel {
		cpo.Version = ">0.0.0-0"
	}
	cpo.Username, cpo.Password = s.repo.username, s.repo.password
	cpo.CaFile, cpo.CertFile, cpo.KeyFile = s.repo.caFile, s.repo.certFile, s.repo.keyFile
	if src == chartRepository {
		cpo.RepoURL = s.repo.repo
	}
	var rc *registry.Client
	if src == chartOCI || s.dependencyUpdate {
		var err error
		if rc, err = registryClient(s.repo, settings); err != nil {
			return nil, err
		}
		setRegistry(rc)
		cfg.RegistryClient = rc
	}
	path, err := cpo.LocateChart(ref, settings)
	if err != nil {
		return nil, fmt.Errorf("cannot get chart %s: %w", describeChart(s), err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load chart %s: %w", describeChart(s), err)
	}
	if deps := ch.Metadata.Dependencies; len(deps) > 0 {
		if err := action.CheckDependencies(ch, deps); err != nil {
			fi, statErr := os.Stat(path)
			if !s.dependencyUpdate || statErr != nil || !fi.IsDir() {
				return nil, fmt.Errorf("chart %s: %w (set dependencyUpdate, or vendor the dependencies into charts/)",
					describeChart(s), err)
			}
			man := &downloader.Manager{
				Out: io.Discard, ChartPath: path, Keyring: s.keyring, Getters: getter.All(settings),
				RegistryClient: rc, RepositoryConfig: settings.RepositoryConfig, RepositoryCache: settings.RepositoryCache,
			}
			if err := man.Update(); err != nil {
				return nil, fmt.Errorf("updating the dependencies of chart %s: %w", describeChart(s), err)
			}
			if ch, err = loader.Load(path); err != nil {
				return nil, fmt.Errorf("cannot load chart %s: %w", describeChart(s), err)
			}
		}
	}
	return ch, nil
}

func describeChart(s releaseSpec) string {
	d := s.chart
	if s.repo.repo != "" {
		d += " from " + s.repo.repo
	}
	if s.version != "" {
		d += " version " + s.version
	}
	return d
}

// registryClient builds an OCI registry client from repositoryOpts (basic
// auth and TLS files), falling back to Helm's registry login configuration.
func registryClient(opts repositoryOpts, settings *cli.EnvSettings) (*registry.Client, error) {
	options := []registry.ClientOption{
		registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(settings.RegistryConfig),
		registry.ClientOptEnableCache(true),
	}
	if opts.username != "" || opts.password != "" {
		options = append(options, registry.ClientOptBasicAuth(opts.username, opts.password))
	}
	if opts.caFile != "" || opts.certFile != "" || opts.keyFile != "" {
		tlsConf, err := clientTLS(opts)
		if err != nil {
			return nil, err
		}
		options = append(options, registry.ClientOptHTTPClient(&http.Client{
			Transport: &http.Transport{TLSClientConfig: tlsConf, Proxy: http.ProxyFromEnvironment},
		}))
	}
	rc, err := registry.NewClient(options...)
	if err != nil {
		return nil, fmt.Errorf("cannot set up the OCI registry client: %w", err)
	}
	return rc, nil
}

func clientTLS(opts repositoryOpts) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.caFile != "" {
		pem, err := os.ReadFile(opts.caFile)
		if err != nil {
			return nil, fmt.Errorf("repositoryOpts.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("repositoryOpts.caFile %s holds no PEM certificate", opts.caFile)
		}
		conf.RootCAs = pool
	}
	if opts.certFile != "" || opts.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.certFile, opts.keyFile)
		if err != nil {
			return nil, fmt.Errorf("repositoryOpts.certFile/keyFile: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// lintChart runs `helm lint` on a local chart with the given values; it
// returns the errors found.
func lintChart(path, namespace string, vals map[string]any) []string {
	l := action.NewLint()
	l.Namespace = namespace
	res := l.Run([]string{path}, vals)
	var out []string
	for _, e := range res.Errors {
		out = append(out, e.Error())
	}
	return out
}

// infoOf extracts what the outputs need from a release.
func infoOf(r *release.Release) releaseInfo {
	info := releaseInfo{name: r.Name, namespace: r.Namespace, revision: r.Version, values: r.Config, manifest: r.Manifest}
	if r.Info != nil {
		info.status = string(r.Info.Status)
	}
	if r.Chart != nil && r.Chart.Metadata != nil {
		info.chart, info.version, info.appVersion = r.Chart.Metadata.Name, r.Chart.Metadata.Version, r.Chart.Metadata.AppVersion
	}
	return info
}
