package oneproc

import "testing"

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		bulk bool
	}{
		{[]string{"run", "--rm", "img", "id"}, "run", false},
		{[]string{"-a", "/run/x.sock", "-n", "ns", "images", "pull", "r"}, "images", true},
		{[]string{"--address=/run/x.sock", "--debug", "i", "ls"}, "i", true},
		{[]string{"--namespace", "images", "c", "ls"}, "c", false},
		{[]string{"--timeout", "5s", "content", "ls"}, "content", true},
		{[]string{"--connect-timeout", "1s", "--", "tasks"}, "tasks", false},
		{[]string{"--debug"}, "", false},
		{nil, "", false},
	} {
		got := command(tc.args)
		if got != tc.want || bulk(got) != tc.bulk {
			t.Errorf("command(%q) = %q (bulk %v), want %q (bulk %v)", tc.args, got, bulk(got), tc.want, tc.bulk)
		}
	}
}
