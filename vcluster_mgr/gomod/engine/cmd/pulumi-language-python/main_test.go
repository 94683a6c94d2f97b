package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestBuildRunArgs(t *testing.T) {
	req := &pulumirpc.RunRequest{
		MonitorAddress: "127.0.0.1:1", Project: "p", Stack: "dev", Pwd: "/prog",
		DryRun: true, Parallel: 8, Organization: "org", Args: []string{"x"},
		Info: &pulumirpc.ProgramInfo{RootDirectory: "/root", ProgramDirectory: "/prog", EntryPoint: "__main__.py"},
	}
	got := buildRunArgs("/bin/exec", "127.0.0.1:2", "", req)
	want := []string{"/bin/exec", "--monitor", "127.0.0.1:1", "--engine", "127.0.0.1:2", "--project", "p",
		"--stack", "dev", "--pwd", "/prog", "--dry_run", "true", "--parallel", "8", "--organization", "org",
		"--root_directory", "/root", "__main__.py", "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("args\n got %v\nwant %v", got, want)
	}

	// No entry point: the program directory itself (its __main__.py).
	req.Info.EntryPoint = ""
	got = buildRunArgs("/bin/exec", "e", "http://trace", req)
	if got[len(got)-2] != "." || !strings.Contains(strings.Join(got, " "), "--tracing http://trace") {
		t.Errorf("args %v", got)
	}
}

func TestBuildRunEnv(t *testing.T) {
	req := &pulumirpc.RunRequest{Config: map[string]string{"p:k": "v"}, ConfigSecretKeys: []string{"p:k"}}
	env, err := buildRunEnv([]string{"PATH=/usr/bin", "PULUMI_CONFIG=stale"}, req, "/venv")
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		last[k] = v
	}
	var cfg map[string]string
	if err := json.Unmarshal([]byte(last["PULUMI_CONFIG"]), &cfg); err != nil || cfg["p:k"] != "v" {
		t.Errorf("PULUMI_CONFIG = %q", last["PULUMI_CONFIG"])
	}
	if last["PULUMI_CONFIG_SECRET_KEYS"] != `["p:k"]` || last["PULUMI_RUNTIME_VIRTUALENV"] != "/venv" ||
		last["PATH"] != "/venv/bin:/usr/bin" {
		t.Errorf("env %v", last)
	}

	env, _ = buildRunEnv(nil, &pulumirpc.RunRequest{}, "")
	if !contains(env, "PULUMI_CONFIG={}") || !contains(env, "PULUMI_CONFIG_SECRET_KEYS=[]") {
		t.Errorf("empty config env %v", env)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestChoosePython(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "venv", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "venv", "bin", "python"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	opts, _ := structpb.NewStruct(map[string]any{"virtualenv": "venv"})
	python, venv, err := choosePython(&pulumirpc.ProgramInfo{RootDirectory: root, Options: opts}, os.Getenv)
	if err != nil || python != filepath.Join(root, "venv", "bin", "python") || venv != filepath.Join(root, "venv") {
		t.Errorf("venv python = %q %q %v", python, venv, err)
	}

	missing, _ := structpb.NewStruct(map[string]any{"virtualenv": "nope"})
	if _, _, err := choosePython(&pulumirpc.ProgramInfo{RootDirectory: root, Options: missing}, os.Getenv); err == nil {
		t.Errorf("a missing virtualenv must be an error")
	}

	python, venv, err = choosePython(nil, func(string) string { return "sh" })
	if err != nil || filepath.Base(python) != "sh" || venv != "" {
		t.Errorf("PULUMI_PYTHON_CMD python = %q %q %v", python, venv, err)
	}
}

func TestRunResult(t *testing.T) {
	for code, want := range map[int]*pulumirpc.RunResponse{
		0:  {},
		32: {Bail: true},
		3:  {Error: "Program exited with non-zero exit code: 3"},
	} {
		err := exec.Command("sh", "-c", "exit "+strconv.Itoa(code)).Run()
		got, _ := runResult(err)
		if got.Bail != want.Bail || got.Error != want.Error {
			t.Errorf("exit %d: got %v", code, got)
		}
	}
}
