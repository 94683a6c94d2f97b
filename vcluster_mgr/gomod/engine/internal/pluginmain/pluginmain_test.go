package pluginmain

import "testing"

func TestParseArgs(t *testing.T) {
	cases := []struct {
		argv    []string
		address string
		flags   map[string]string
	}{
		{[]string{"127.0.0.1:1234"}, "127.0.0.1:1234", map[string]string{}},
		{
			[]string{"--logtostderr", "-v=9", "--tracing", "http://t", "-root=/p", "-unknown", "127.0.0.1:1"},
			"127.0.0.1:1",
			map[string]string{"logtostderr": "true", "v": "9", "tracing": "http://t", "root": "/p", "unknown": "true"},
		},
		{[]string{"-v", "127.0.0.1:2"}, "127.0.0.1:2", map[string]string{"v": "true"}},
		{[]string{"-virtualenv", "venv", "-typechecker=mypy", "127.0.0.1:3"}, "127.0.0.1:3",
			map[string]string{"virtualenv": "venv", "typechecker": "mypy"}},
		{nil, "", map[string]string{}},
	}
	for _, c := range cases {
		got := ParseArgs(c.argv)
		if got.EngineAddress != c.address {
			t.Errorf("%v: address %q, want %q", c.argv, got.EngineAddress, c.address)
		}
		for k, v := range c.flags {
			if got.Flags[k] != v {
				t.Errorf("%v: flag %s = %q, want %q", c.argv, k, got.Flags[k], v)
			}
		}
	}
}
