// Command pulumi-language-python is a minimal Pulumi language host for Python
// programs, used by vcluster-mgr instead of the upstream host.
//
// Why it exists: the upstream host lives in its own Go module
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), which the
// Go module proxy available to our build machines does not serve, so it cannot
// be built from source there. The Pulumi CLI itself can be built, and it needs a
// language host to run the Python programs vcluster-mgr generates.
//
// What it implements: only what `pulumi preview/up/destroy/refresh` need for a
// program whose dependencies are already installed in a virtualenv managed by
// the project itself:
//   - Run: starts `pulumi-language-python-exec` (the script shipped with the
//     Pulumi Python SDK sources, expected beside this binary or on PATH) with the
//     chosen Python and maps its exit code to the engine's result;
//   - GetPluginInfo, Handshake, About, and empty answers for dependency and
//     plugin discovery (GetRequiredPlugins, GetRequiredPackages,
//     GetProgramDependencies, RuntimeOptionsPrompts);
//   - InstallDependencies: deliberately does nothing.
//
// Not implemented (answer Unimplemented): code generation, packing, linking,
// templates, debugging, typecheckers and toolchains other than a plain venv.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"vcluster-mgr.dev/toolchain/internal/pluginmain"
)

// version is reported to the engine; it matches the Pulumi SDK/CLI release the
// exec script comes from, so that version checks see a consistent toolchain.
const version = "3.259.0"

// execScriptName is the Python entry point that configures the Pulumi runtime
// from its flags and then runs the user's program.
const execScriptName = "pulumi-language-python-exec"

// bailExitCode is what the exec script returns after it has already shown the
// user an actionable error; the engine must then not add its own error.
const bailExitCode = 32

func main() {
	args := pluginmain.ParseArgs(os.Args[1:])
	if args.Flags["version"] == "true" {
		// `-version` lets tooling check the pinned version without starting a server.
		fmt.Println(version)
		return
	}
	host := &languageHost{engineAddress: args.EngineAddress, tracing: args.Flags["tracing"]}
	err := pluginmain.Serve(context.Background(), args.EngineAddress,
		func(ctx context.Context, s *grpc.Server) error {
			host.shutdown = ctx
			pulumirpc.RegisterLanguageRuntimeServer(s, host)
			return nil
		})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
}

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	engineAddress string
	tracing       string
	// shutdown is cancelled when the host is asked to stop (signal, engine
	// gone); a running program is then stopped rather than left behind.
	shutdown context.Context
}

// Cancel is called by the engine when it is done with the host, including
// while a failed update's program is still waiting on the engine. Nothing is
// interrupted here: the program ends by itself once the engine closes its
// resource monitor, and the engine signals the whole plugin process group
// (which includes the program) when it stops plugins.
func (h *languageHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *languageHost) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (
	*pulumirpc.LanguageHandshakeResponse, error,
) {
	// Newer engines may pass the address here rather than on the command line.
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

// Plugins are not pre-computed: the engine loads providers on demand when the
// program registers resources, which is all vcluster-mgr needs.
func (h *languageHost) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (
	*pulumirpc.GetRequiredPluginsResponse, error,
) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *languageHost) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (
	*pulumirpc.GetRequiredPackagesResponse, error,
) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *languageHost) GetProgramDependencies(context.Context, *pulumirpc.GetProgramDependenciesRequest) (
	*pulumirpc.GetProgramDependenciesResponse, error,
) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *languageHost) RuntimeOptionsPrompts(context.Context, *pulumirpc.RuntimeOptionsRequest) (
	*pulumirpc.RuntimeOptionsResponse, error,
) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

// InstallDependencies does nothing on purpose: vcluster-mgr installs the Python
// dependencies into its own virtualenv, and this machine may have no access to
// an index pip could use anyway.
func (h *languageHost) InstallDependencies(_ *pulumirpc.InstallDependenciesRequest,
	stream grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	msg := "pulumi-language-python (vcluster-mgr): dependencies are managed by the project's own virtualenv; " +
		"nothing to install.\n"
	return stream.Send(&pulumirpc.InstallDependenciesResponse{Stdout: []byte(msg)})
}

func (h *languageHost) About(_ context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	python, _, err := choosePython(req.GetInfo(), os.Getenv)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(python, "-c",
		"import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])").Output()
	if err != nil {
		return nil, fmt.Errorf("could not run %s: %w", python, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	resp := &pulumirpc.AboutResponse{Executable: python}
	if len(lines) == 2 {
		resp.Executable, resp.Version = lines[0], lines[1]
	}
	return resp, nil
}

func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	python, venv, err := choosePython(req.GetInfo(), os.Getenv)
	if err != nil {
		return nil, err
	}
	script, err := findExecScript()
	if err != nil {
		return nil, err
	}

	// Kill the program if either the engine abandons the call or we are told
	// to shut down.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if h.shutdown != nil {
		stop := context.AfterFunc(h.shutdown, cancel)
		defer stop()
	}

	cmd := exec.CommandContext(ctx, python, buildRunArgs(script, h.engineAddress, h.tracing, req)...)
	// Interrupt like a Ctrl-C first so the SDK can finish its RPCs; kill only
	// if the program does not stop.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = programDirectory(req)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env, err = buildRunEnv(os.Environ(), req, venv)
	if err != nil {
		return nil, err
	}

	err = cmd.Run()
	return runResult(err)
}

// runResult translates the program's exit status into what the engine expects.
func runResult(err error) (*pulumirpc.RunResponse, error) {
	if err == nil {
		return &pulumirpc.RunResponse{}, nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err)}, nil
	}
	code := exitErr.ExitCode()
	if code == bailExitCode {
		return &pulumirpc.RunResponse{Bail: true}, nil
	}
	if code < 0 {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program was terminated: %v", exitErr)}, nil
	}
	return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", code)}, nil
}

// programDirectory is where the program runs; the engine sends it both as the
// deprecated Pwd and inside ProgramInfo.
func programDirectory(req *pulumirpc.RunRequest) string {
	if req.GetPwd() != "" {
		return req.GetPwd()
	}
	return req.GetInfo().GetProgramDirectory()
}

// buildRunArgs builds the exec script's command line. Every flag the script
// parses unconditionally (e.g. --parallel goes through int()) is always given.
func buildRunArgs(script, engineAddress, tracing string, req *pulumirpc.RunRequest) []string {
	args := []string{
		script,
		"--monitor", req.GetMonitorAddress(),
		"--engine", engineAddress,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", programDirectory(req),
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		"--organization", req.GetOrganization(),
		"--root_directory", req.GetInfo().GetRootDirectory(),
	}
	if tracing != "" {
		args = append(args, "--tracing", tracing)
	}
	entry := req.GetInfo().GetEntryPoint()
	if entry == "" {
		entry = req.GetProgram() // older engines only fill the deprecated field
	}
	if entry == "" {
		entry = "."
	}
	args = append(args, entry)
	return append(args, req.GetArgs()...)
}

// buildRunEnv passes configuration the way the Pulumi Python SDK reads it
// (pulumi.runtime.get_config_env / get_config_secret_keys_env).
func buildRunEnv(base []string, req *pulumirpc.RunRequest, venv string) ([]string, error) {
	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	cfg, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	keys := req.GetConfigSecretKeys()
	if keys == nil {
		keys = []string{}
	}
	secretKeys, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	env := append([]string{}, base...)
	env = append(env,
		"PULUMI_CONFIG="+string(cfg),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
		// Program output is relayed line by line to the engine; buffering
		// would delay or, on a crash, lose it.
		"PYTHONUNBUFFERED=1",
	)
	if venv != "" {
		// Dynamic providers started later by the engine look for the venv here.
		// Activating it as `source bin/activate` would, lets the program's own
		// subprocesses find the venv's tools too.
		path := filepath.Join(venv, "bin")
		for _, kv := range base {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok && v != "" {
				path = filepath.Join(venv, "bin") + string(os.PathListSeparator) + v
			}
		}
		env = append(env, "PULUMI_RUNTIME_VIRTUALENV="+venv, "VIRTUAL_ENV="+venv, "PATH="+path)
	}
	return env, nil // os/exec keeps the last value of duplicated keys
}

// choosePython returns the interpreter to use and, when it comes from a
// virtualenv, that virtualenv's absolute path.
func choosePython(info *pulumirpc.ProgramInfo, getenv func(string) string) (string, string, error) {
	if venv := info.GetOptions().GetFields()["virtualenv"].GetStringValue(); venv != "" {
		if !filepath.IsAbs(venv) {
			venv = filepath.Join(info.GetRootDirectory(), venv)
		}
		venv = filepath.Clean(venv)
		python := filepath.Join(venv, "bin", "python")
		if _, err := os.Stat(python); err != nil {
			return "", "", fmt.Errorf("the virtualenv %s configured in Pulumi.yaml (runtime.options.virtualenv) "+
				"has no bin/python: create it and install the project's dependencies first", venv)
		}
		return python, venv, nil
	}
	name := getenv("PULUMI_PYTHON_CMD")
	if name == "" {
		name = "python3"
	}
	python, err := exec.LookPath(name)
	if err != nil {
		return "", "", fmt.Errorf("no Python interpreter: set runtime.options.virtualenv in Pulumi.yaml, "+
			"PULUMI_PYTHON_CMD, or put %s on PATH: %w", name, err)
	}
	return python, "", nil
}

// findExecScript looks beside this binary first so that a toolchain directory
// is self-contained, then on PATH.
func findExecScript() (string, error) {
	var tried []string
	if self, err := os.Executable(); err == nil {
		dirs := []string{filepath.Dir(self)}
		if real, err := filepath.EvalSymlinks(self); err == nil && filepath.Dir(real) != dirs[0] {
			dirs = append(dirs, filepath.Dir(real))
		}
		for _, dir := range dirs {
			candidate := filepath.Join(dir, execScriptName)
			if st, err := os.Stat(candidate); err == nil && !st.IsDir() {
				return candidate, nil
			}
			tried = append(tried, candidate)
		}
	}
	if path, err := exec.LookPath(execScriptName); err == nil {
		return path, nil
	}
	return "", fmt.Errorf("%s not found (looked at %s and on PATH); copy it from the Pulumi SDK sources "+
		"(sdk/python/cmd/%s) next to pulumi-language-python", execScriptName, strings.Join(tried, ", "), execScriptName)
}
