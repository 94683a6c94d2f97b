// Package pluginmain holds the start-up protocol of a Pulumi plugin (our language
// host): how the engine's command line is read, how the gRPC server is
// exposed on loopback, and when the process stops.
//
// The Pulumi engine starts a plugin as `pulumi-<kind>-<name> [flags] ENGINE_ADDRESS`,
// then reads the first line of the plugin's stdout to learn the port it listens
// on. Nothing else may be printed on stdout before that line.
package pluginmain

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// flagsWithSeparateValue lists flags the engine (or older engines) may pass as
// `-flag value` instead of `-flag=value`; their value must not be mistaken for
// the engine address.
var flagsWithSeparateValue = map[string]bool{
	"tracing": true, "root": true, "virtualenv": true, "typechecker": true,
	"toolchain": true, "v": true,
}

// Args is what we understand of the engine's command line.
type Args struct {
	EngineAddress string
	// Flags keeps every flag seen (name without dashes -> value, "true" for
	// bare flags) so that callers can look at them, though none is required.
	Flags map[string]string
}

// ParseArgs reads the command line leniently: unknown flags are accepted and
// ignored, because each engine release may add flags we have no use for and a
// strict parser would make the plugin fail to start.
func ParseArgs(argv []string) Args {
	out := Args{Flags: map[string]string{}}
	var positional []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			positional = append(positional, argv[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(name, "="); ok {
			out.Flags[k] = v
			continue
		}
		// `-v` is normally `-v=N`; only treat the next word as its value when it
		// is a number, so `-v ADDRESS` keeps the address.
		if flagsWithSeparateValue[name] && i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") &&
			(name != "v" || isDigits(argv[i+1])) {
			out.Flags[name] = argv[i+1]
			i++
			continue
		}
		out.Flags[name] = "true"
	}
	if len(positional) > 0 {
		out.EngineAddress = positional[0]
	}
	return out
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Serve starts a gRPC server on a free loopback port, announces the port on
// stdout and blocks until the server stops. The server stops on SIGINT/SIGTERM,
// when the engine stops answering health checks (the engine went away without
// killing us), or when ctx is cancelled. register receives a context that is
// cancelled as soon as shutdown starts, so long-running calls (a program run,
// a deletion wait) can give up instead of holding the graceful stop forever.
func Serve(ctx context.Context, engineAddress string, register func(context.Context, *grpc.Server) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	if engineAddress != "" {
		// The engine serves the gRPC health service; when it disappears we exit
		// instead of lingering as an orphan.
		if err := rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, cancel); err != nil {
			return fmt.Errorf("could not watch the engine at %s: %w", engineAddress, err)
		}
	}

	stop := make(chan bool)
	go func() {
		<-ctx.Done()
		close(stop)
	}()

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init:    func(s *grpc.Server) error { return register(ctx, s) },
		Cancel:  stop,
		Options: traceOptions(),
	})
	if err != nil {
		return err
	}
	// The engine reads this line to find us.
	fmt.Printf("%d\n", handle.Port)
	return <-handle.Done
}

// TraceEnv names a file to which every gRPC method called on the plugin is
// appended, with its outcome. It exists to answer "which calls does this
// engine version make?" without a debugger; unset, nothing is recorded.
const TraceEnv = "VCLUSTER_MGR_PLUGIN_TRACE"

func traceOptions() []grpc.ServerOption {
	path := os.Getenv(TraceEnv)
	if path == "" {
		return nil
	}
	var mu sync.Mutex
	record := func(method string, err error) {
		mu.Lock()
		defer mu.Unlock()
		f, ferr := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if ferr != nil {
			return
		}
		defer f.Close()
		outcome := "ok"
		if err != nil {
			outcome = "error: " + status.Convert(err).Message()
		}
		fmt.Fprintf(f, "%s pid=%d %s %s\n", filepath.Base(os.Args[0]), os.Getpid(), method, outcome)
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo,
			handler grpc.UnaryHandler,
		) (any, error) {
			resp, err := handler(ctx, req)
			record(info.FullMethod, err)
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo,
			handler grpc.StreamHandler,
		) error {
			err := handler(srv, ss)
			record(info.FullMethod, err)
			return err
		}),
	}
}
